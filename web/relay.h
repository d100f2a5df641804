/* What the XML relays (RFC 7395 in ws_xmpp.c, BOSH in bosh*.c) share: putting client payloads
 * in the jabber:client namespace, noticing the JID the server bound, and keeping channel
 * binding out of the stream features. */
#ifndef GW_RELAY_H
#define GW_RELAY_H

#include "gateway/session.h"
#include "xmpp/xml.h"

/* Puts el, and the descendants that inherited its namespace, in jabber:client when that
 * namespace is inherited (NULL: an RFC 7395 frame that left xmlns out; or the BOSH wrapper's
 * namespace, which unqualified payloads of a <body/> inherit). Elements in other namespaces
 * and their subtrees are left alone. */
void gw_relay_client_ns(struct gw_xml *el, const char *inherited);

/* Watches an upstream element for the result of resource binding and records the bare JID
 * and the bound state on the session; counts the login (bound, or a SASL failure). */
void gw_relay_watch_bind(struct gw_session *sess, const struct gw_xml *el);

/* Removes from a <stream:features/> element (anything else is left alone) the SASL mechanisms
 * ending in -PLUS, in RFC 6120 <mechanisms/> and XEP-0388 <authentication/>, and XEP-0440's
 * <sasl-channel-binding/>. They bind to the TLS channel between mxgw and the server, which the
 * relayed client is not on, so it could never complete them (a browser client offered one
 * picks it without binding; Prosody's own BOSH and WebSocket endpoints offer none). */
void gw_relay_strip_channel_binding(struct gw_xml *el);

#endif
