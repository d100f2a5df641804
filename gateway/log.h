/* Structured logging: one line per event, "ts=… level=… event=… key=value …". */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum gw_log_level { GW_LOG_DEBUG, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR, GW_LOG_OFF };

/* The log sink is process-wide, like stderr: it is the one piece of state every module shares
 * without a context pointer. path NULL or "-" means stderr. Returns 0 or GW_EIO. */
int gw_log_open(const char *path, enum gw_log_level level);
/* Reopens the log file (SIGHUP, for logrotate). Returns 0 or GW_EIO; the old sink stays on error.
 */
int gw_log_reopen(void);
void gw_log_close(void);
void gw_log_set_level(enum gw_log_level level);
bool gw_log_enabled(enum gw_log_level level);
/* Parses "debug|info|warn|error|off"; returns 0 or GW_EINVAL. */
int gw_log_level_parse(const char *s, enum gw_log_level *out);

/* Writes one event line. fmt holds the extra key=value fields; values that may contain spaces,
 * quotes or control characters go through gw_log_quote(). Never pass passwords, tokens or
 * message bodies. */
void gw_log(enum gw_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quotes s into buf (always NUL-terminated, truncated with "…" if needed) so that it reads as
 * one value; returns buf. */
const char *gw_log_quote(char *buf, size_t size, const char *s);

#define GW_DEBUG(ev, ...) gw_log(GW_LOG_DEBUG, ev, __VA_ARGS__)
#define GW_INFO(ev, ...)  gw_log(GW_LOG_INFO, ev, __VA_ARGS__)
#define GW_WARN(ev, ...)  gw_log(GW_LOG_WARN, ev, __VA_ARGS__)
#define GW_ERROR(ev, ...) gw_log(GW_LOG_ERROR, ev, __VA_ARGS__)

#endif
