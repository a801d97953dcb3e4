#include <criterion/criterion.h>
#include <string.h>

#include "agent/wg/messages.h"

struct parse_case {
	const char *what;
	uint8_t type;
	uint8_t reserved[3];
	size_t len;
	int want;
};

Test(wg_messages, parse_table)
{
	static const struct parse_case cases[] = {
		{ "initiation", 1, { 0 }, 148, WG_MSG_INITIATION },
		{ "response", 2, { 0 }, 92, WG_MSG_RESPONSE },
		{ "cookie reply", 3, { 0 }, 64, WG_MSG_COOKIE_REPLY },
		{ "keepalive", 4, { 0 }, 32, WG_MSG_DATA },
		{ "data", 4, { 0 }, 1452, WG_MSG_DATA },
		{ "data, unpadded length", 4, { 0 }, 33, WG_MSG_DATA },
		{ "empty", 1, { 0 }, 0, WG_MSG_E_TRUNCATED },
		{ "3 bytes", 1, { 0 }, 3, WG_MSG_E_TRUNCATED },
		{ "type 0", 0, { 0 }, 148, WG_MSG_E_TYPE },
		{ "type 5", 5, { 0 }, 148, WG_MSG_E_TYPE },
		{ "type 255", 255, { 0 }, 32, WG_MSG_E_TYPE },
		{ "reserved[0]", 1, { 1, 0, 0 }, 148, WG_MSG_E_RESERVED },
		{ "reserved[2]", 4, { 0, 0, 0x80 }, 32, WG_MSG_E_RESERVED },
		{ "initiation truncated", 1, { 0 }, 147, WG_MSG_E_TRUNCATED },
		{ "initiation too long", 1, { 0 }, 149, WG_MSG_E_LENGTH },
		{ "response truncated", 2, { 0 }, 91, WG_MSG_E_TRUNCATED },
		{ "response as long as an initiation", 2, { 0 }, 148, WG_MSG_E_LENGTH },
		{ "cookie truncated", 3, { 0 }, 63, WG_MSG_E_TRUNCATED },
		{ "cookie too long", 3, { 0 }, 65, WG_MSG_E_LENGTH },
		{ "data shorter than a keepalive", 4, { 0 }, 31, WG_MSG_E_TRUNCATED },
		{ "data header only", 4, { 0 }, 16, WG_MSG_E_TRUNCATED },
	};
	uint8_t buf[1500];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct parse_case *c = &cases[i];

		memset(buf, 0xee, sizeof(buf));
		buf[0] = c->type;
		memcpy(buf + 1, c->reserved, 3);
		int got = wg_msg_parse(buf, c->len);
		cr_expect_eq(got, c->want, "%s: got %d (%s), want %d (%s)", c->what, got,
			     wg_msg_strerror(got), c->want, wg_msg_strerror(c->want));
	}
	/* every error has its own name */
	cr_expect_str_eq(wg_msg_strerror(WG_MSG_E_TRUNCATED), "truncated");
	cr_expect_str_eq(wg_msg_strerror(WG_MSG_E_TYPE), "unknown message type");
	cr_expect_str_eq(wg_msg_strerror(WG_MSG_E_RESERVED), "non-zero reserved bytes");
	cr_expect_str_eq(wg_msg_strerror(WG_MSG_E_LENGTH), "wrong length");
	cr_expect_str_eq(wg_msg_type_name(WG_MSG_COOKIE_REPLY), "cookie-reply");
}

Test(wg_messages, layout_and_byte_order)
{
	uint8_t buf[16];
	struct wg_msg_response r;

	cr_expect_eq(offsetof(struct wg_msg_initiation, unencrypted_ephemeral), 8);
	cr_expect_eq(offsetof(struct wg_msg_initiation, encrypted_static), 40);
	cr_expect_eq(offsetof(struct wg_msg_initiation, encrypted_timestamp), 88);
	cr_expect_eq(offsetof(struct wg_msg_initiation, macs), 116);
	cr_expect_eq(offsetof(struct wg_msg_response, receiver_index), 8);
	cr_expect_eq(offsetof(struct wg_msg_response, macs), 60);
	cr_expect_eq(offsetof(struct wg_msg_cookie_reply, nonce), 8);
	cr_expect_eq(offsetof(struct wg_msg_data, counter), 8);

	wg_le32_put(buf, 0x04030201);
	wg_le64_put(buf + 4, 0x0c0b0a0908070605ULL);
	for (int i = 0; i < 12; i++)
		cr_expect_eq(buf[i], i + 1);
	cr_expect_eq(wg_le32_get(buf), 0x04030201);
	cr_expect_eq(wg_le64_get(buf + 4), 0x0c0b0a0908070605ULL);
	wg_le32_put(&r.sender_index, 7);
	cr_expect_eq(((uint8_t *)&r)[4], 7);
}
