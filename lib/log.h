/* log: one line per event, "level component: message key=value ...", or one
 * JSON object per line with --log-format json (STYLE.md item 11). In JSON the
 * trailing key=value tokens of the message become fields of the object. */
#ifndef NATMESH_LOG_H
#define NATMESH_LOG_H

#include <stdarg.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

void log_setup(enum log_format format, enum log_level min_level);
/* "text" | "json"; returns 0 or -EINVAL */
int log_parse_format(const char *s, enum log_format *out);
void log_msg(enum log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define log_debug(c, ...) log_msg(LOG_DEBUG, c, __VA_ARGS__)
#define log_info(c, ...)  log_msg(LOG_INFO, c, __VA_ARGS__)
#define log_warn(c, ...)  log_msg(LOG_WARN, c, __VA_ARGS__)
#define log_error(c, ...) log_msg(LOG_ERROR, c, __VA_ARGS__)

#endif
