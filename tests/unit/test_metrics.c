/* Tests for gateway/metrics.c: registration finds the same series again, and the rendering is
 * the Prometheus text format (HELP and TYPE once per family, cumulative histogram buckets). */
#include "tests/unit/check.h"
#include "gateway/metrics.h"

#include <stdlib.h>
#include <string.h>

static double forty_two(void *arg)
{
    (void)arg;
    return 42;
}

int main(void)
{
    struct gw_metrics *m = gw_metrics_new();
    uint64_t *a = gw_metrics_counter(m, "mxgw_stanzas_total", "Stanzas.", "dir=\"in\"");
    uint64_t *b = gw_metrics_counter(m, "mxgw_stanzas_total", "Stanzas.", "dir=\"out\"");
    CHECK(a != b, "expected two series");
    CHECK(gw_metrics_counter(m, "mxgw_stanzas_total", NULL, "dir=\"in\"") == a,
          "expected the same series on a second registration");
    *a += 3;
    (*b)++;
    int64_t *g = gw_metrics_gauge(m, "mxgw_queue_depth", "Queue depth.", NULL);
    *g = -2;
    gw_metrics_gauge_fn(m, "mxgw_sessions", "Sessions.", "transport=\"bosh\"", forty_two, NULL);
    static const double bounds[] = {0.001, 0.01, 0.1};
    struct gw_histogram *h =
        gw_metrics_histogram(m, "mxgw_lag_seconds", "Loop lag.", NULL, bounds, 3);
    gw_histogram_observe(h, 0.0005);
    gw_histogram_observe(h, 0.05);
    gw_histogram_observe(h, 5);

    size_t len;
    char *text = gw_metrics_render(m, &len);
    static const char *const want[] = {
        "# HELP mxgw_stanzas_total Stanzas.\n# TYPE mxgw_stanzas_total counter\n"
        "mxgw_stanzas_total{dir=\"in\"} 3\nmxgw_stanzas_total{dir=\"out\"} 1\n",
        "# TYPE mxgw_queue_depth gauge\nmxgw_queue_depth -2\n",
        "# TYPE mxgw_sessions gauge\nmxgw_sessions{transport=\"bosh\"} 42\n",
        "mxgw_lag_seconds_bucket{le=\"0.001\"} 1\nmxgw_lag_seconds_bucket{le=\"0.01\"} 1\n"
        "mxgw_lag_seconds_bucket{le=\"0.1\"} 2\n"
        "mxgw_lag_seconds_bucket{le=\"+Inf\"} 3\nmxgw_lag_seconds_sum 5.0505\n"
        "mxgw_lag_seconds_count 3\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK(strstr(text, want[i]) != NULL, "expected\n%s\nin\n%s", want[i], text);
    CHECK(strlen(text) == len, "expected length %zu, got %zu", strlen(text), len);
    free(text);
    gw_metrics_free(m);
    return CHECK_DONE();
}
