#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_format g_format = LOG_FORMAT_TEXT;
static enum log_level g_min = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_setup(enum log_format format, enum log_level min_level)
{
	g_format = format;
	g_min = min_level;
}

int log_parse_format(const char *s, enum log_format *out)
{
	if (!strcmp(s, "text"))
		*out = LOG_FORMAT_TEXT;
	else if (!strcmp(s, "json"))
		*out = LOG_FORMAT_JSON;
	else
		return -EINVAL;
	return 0;
}

static void json_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* A key=value token starts at p: key is [a-z0-9_]+ followed by '='. */
static size_t key_len(const char *p)
{
	size_t n = 0;
	while (islower((unsigned char)p[n]) || isdigit((unsigned char)p[n]) || p[n] == '_')
		n++;
	return (n > 0 && p[n] == '=') ? n : 0;
}

/* Length of a value: up to the next space, or a "quoted string". */
static size_t value_len(const char *p, int *quoted)
{
	size_t n = 0;
	*quoted = p[0] == '"';
	if (*quoted) {
		n = 1;
		while (p[n] && p[n] != '"')
			n++;
		return p[n] == '"' ? n + 1 : n;
	}
	while (p[n] && p[n] != ' ')
		n++;
	return n;
}

static void emit_json(FILE *f, enum log_level level, const char *component, const char *msg)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* the message ends where the first " key=" token starts */
	const char *kv = NULL;
	for (const char *p = msg; *p; p++) {
		if ((p == msg || p[-1] == ' ') && key_len(p)) {
			kv = p;
			break;
		}
	}
	size_t mlen = kv ? (size_t)(kv - msg) : strlen(msg);
	while (mlen > 0 && msg[mlen - 1] == ' ')
		mlen--;
	fprintf(f, "{\"ts\":%lld.%03ld,\"level\":\"%s\",\"component\":", (long long)ts.tv_sec,
		ts.tv_nsec / 1000000, level_names[level]);
	json_str(f, component, strlen(component));
	fputs(",\"msg\":", f);
	json_str(f, msg, mlen);
	const char *p = kv;
	while (p && *p) {
		size_t k = key_len(p);
		if (!k) { /* free text after the pairs: skip a word */
			while (*p && *p != ' ')
				p++;
			while (*p == ' ')
				p++;
			continue;
		}
		int quoted;
		size_t v = value_len(p + k + 1, &quoted);
		fputc(',', f);
		json_str(f, p, k);
		fputc(':', f);
		if (quoted)
			json_str(f, p + k + 2, v >= 2 ? v - 2 : 0);
		else
			json_str(f, p + k + 1, v);
		p += k + 1 + v;
		while (*p == ' ')
			p++;
	}
	fputs("}\n", f);
}

void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
{
	char msg[2048];
	if (level < g_min)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (g_format == LOG_FORMAT_JSON)
		emit_json(stderr, level, component, msg);
	else
		fprintf(stderr, "%s %s: %s\n", level_names[level], component, msg);
	fflush(stderr);
}

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, component, fmt, ap);
	va_end(ap);
}
