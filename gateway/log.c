/* Structured, line-oriented logging to stderr or a reopenable file. */
#include "gateway/log.h"

#include "gateway/err.h"
#include "gateway/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
    FILE *fp;
    char *path;
    enum gw_log_level level;
} sink = {NULL, NULL, GW_LOG_INFO};

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

static FILE *out(void)
{
    return sink.fp ? sink.fp : stderr;
}

int gw_log_open(const char *path, enum gw_log_level level)
{
    gw_log_close();
    sink.level = level;
    if (!path || !*path || strcmp(path, "-") == 0)
        return 0;
    sink.path = gw_strdup(path);
    return gw_log_reopen();
}

int gw_log_reopen(void)
{
    if (!sink.path)
        return 0;
    FILE *fp = fopen(sink.path, "a");
    if (!fp)
        return GW_EIO;
    setvbuf(fp, NULL, _IOLBF, 0);
    if (sink.fp)
        fclose(sink.fp);
    sink.fp = fp;
    return 0;
}

void gw_log_close(void)
{
    if (sink.fp)
        fclose(sink.fp);
    sink.fp = NULL;
    free(sink.path);
    sink.path = NULL;
}

void gw_log_set_level(enum gw_log_level level)
{
    sink.level = level;
}

bool gw_log_enabled(enum gw_log_level level)
{
    return level >= sink.level && level < GW_LOG_OFF;
}

int gw_log_level_parse(const char *s, enum gw_log_level *outp)
{
    for (int i = 0; i <= GW_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *outp = (enum gw_log_level)i;
            return 0;
        }
    }
    return GW_EINVAL;
}

void gw_log(enum gw_log_level level, const char *event, const char *fmt, ...)
{
    if (!gw_log_enabled(level))
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], event);
    if (fmt && *fmt && n > 0 && (size_t)n < sizeof line - 1) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    /* A value with an embedded newline would forge a second event: flatten it. */
    for (int i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    fprintf(out(), "%.*s\n", n, line);
    if (!sink.fp)
        fflush(stderr);
}

const char *gw_log_quote(char *buf, size_t size, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (size < 8) {
        if (size)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (o + 6 >= size) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
