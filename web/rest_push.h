/* The REST API's push registrations (/api/v1/users/{jid}/push) served by the push module. */
#ifndef GW_REST_PUSH_H
#define GW_REST_PUSH_H

#include "gateway/core.h"
#include "web/rest.h"

/* Lets r serve push registrations through core->push (borrowed; a call made once it is NULL
 * answers 503). Call after both are started. */
void gw_rest_push_attach(struct gw_rest *r, struct gw_core *core);

#endif
