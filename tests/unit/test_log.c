#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* runs fn with stderr redirected into buf */
static void capture(void (*fn)(void), char *buf, size_t cap)
{
	int fds[2], saved;
	cr_assert_eq(pipe(fds), 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fds[1], 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fds[1]);
	ssize_t n = read(fds[0], buf, cap - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fds[0]);
}

static void emit(void)
{
	log_info("stun", "malformed packet from=%s reason=\"%s\" n=%d", "1.2.3.4:5", "bad length", 3);
	log_debug("stun", "hidden below the minimum level");
}

Test(log, text_format)
{
	char buf[1024];
	log_setup(LOG_FORMAT_TEXT, LOG_INFO);
	capture(emit, buf, sizeof(buf));
	cr_expect_str_eq(buf, "info stun: malformed packet from=1.2.3.4:5 reason=\"bad length\" n=3\n");
}

Test(log, json_format_turns_pairs_into_fields)
{
	char buf[1024];
	json_error_t err;
	log_setup(LOG_FORMAT_JSON, LOG_INFO);
	capture(emit, buf, sizeof(buf));
	cr_assert_eq(strchr(buf, '\n'), buf + strlen(buf) - 1, "one line: %s", buf);
	json_t *o = json_loads(buf, 0, &err);
	cr_assert_not_null(o, "not JSON: %s (%s)", buf, err.text);
	cr_expect_str_eq(json_string_value(json_object_get(o, "level")), "info");
	cr_expect_str_eq(json_string_value(json_object_get(o, "component")), "stun");
	cr_expect_str_eq(json_string_value(json_object_get(o, "msg")), "malformed packet");
	cr_expect_str_eq(json_string_value(json_object_get(o, "from")), "1.2.3.4:5");
	cr_expect_str_eq(json_string_value(json_object_get(o, "reason")), "bad length");
	cr_expect_str_eq(json_string_value(json_object_get(o, "n")), "3");
	json_decref(o);
}

static void emit_quote(void)
{
	log_warn("x", "weird \"quoted\" text\tand control");
}

Test(log, json_escapes)
{
	char buf[1024];
	log_setup(LOG_FORMAT_JSON, LOG_INFO);
	capture(emit_quote, buf, sizeof(buf));
	json_t *o = json_loads(buf, 0, NULL);
	cr_assert_not_null(o, "not JSON: %s", buf);
	cr_expect_str_eq(json_string_value(json_object_get(o, "msg")), "weird \"quoted\" text\tand control");
	json_decref(o);
}

Test(log, parse_format)
{
	enum log_format f;
	cr_expect_eq(log_parse_format("json", &f), 0);
	cr_expect_eq(f, LOG_FORMAT_JSON);
	cr_expect_eq(log_parse_format("text", &f), 0);
	cr_expect_eq(f, LOG_FORMAT_TEXT);
	cr_expect_eq(log_parse_format("xml", &f), -EINVAL);
}
