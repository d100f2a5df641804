/* Metrics: counters, gauges and histograms in one registry, rendered in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * A series is registered once (at start-up or on first use) and then updated through the
 * pointer it returns, so a hot path costs one increment. Series are named by a family name
 * (snake_case, "mxgw_" prefixed, counters ending in "_total") and a label list written as
 * Prometheus writes it, `transport="ws-json",state="bound"`. Label values must come from fixed
 * sets in the code (transport names, routes, status codes, provider names): never from a
 * client, which would let a client grow the registry without bound. */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct gw_metrics;
struct gw_histogram;

/* Returns an owned, empty registry. */
struct gw_metrics *gw_metrics_new(void);
/* Frees the registry and every series. NULL is fine. */
void gw_metrics_free(struct gw_metrics *m);

/* Returns the counter of family name with these labels ("" or NULL for none), registering it
 * (and the family, with help) on first use. The pointer stays valid until gw_metrics_free().
 * Registering the same name as another type aborts: it is a programming error. */
uint64_t *gw_metrics_counter(struct gw_metrics *m, const char *name, const char *help,
                             const char *labels);
/* A gauge holding a value set by the caller. */
int64_t *gw_metrics_gauge(struct gw_metrics *m, const char *name, const char *help,
                          const char *labels);
/* A gauge read at render time: fn(arg) gives its value. arg is borrowed. */
void gw_metrics_gauge_fn(struct gw_metrics *m, const char *name, const char *help,
                         const char *labels, double (*fn)(void *arg), void *arg);
/* A histogram with these upper bounds (ascending, copied; +Inf is implicit). */
struct gw_histogram *gw_metrics_histogram(struct gw_metrics *m, const char *name, const char *help,
                                          const char *labels, const double *bounds, size_t nbounds);
void gw_histogram_observe(struct gw_histogram *h, double value);
/* n observations of the same value. */
void gw_histogram_observe_n(struct gw_histogram *h, double value, uint64_t n);
/* n observations of the seconds since start_ns (a uv_hrtime() reading). */
void gw_histogram_observe_since(struct gw_histogram *h, uint64_t start_ns, uint64_t n);

/* mxgw_forward_seconds: the time from reading a message (core->read_ns) to handing what it
 * caused to the kernel, by transport and direction (to_server, to_client). Its bounds, from
 * 10 µs to 1 s, are finest around the 2 ms budget of issue 7. */
struct gw_histogram *gw_metrics_forward(struct gw_metrics *m, const char *transport,
                                        const char *direction);

/* Renders every family, in registration order, as Prometheus text. Returns an owned string
 * and its length through *len. */
char *gw_metrics_render(const struct gw_metrics *m, size_t *len);

#endif
