/* messages: classify a received datagram by type, length and reserved bytes. */
#include "messages.h"

int wg_msg_parse(const uint8_t *buf, size_t len)
{
	size_t want;

	if (len < sizeof(struct wg_msg_header))
		return WG_MSG_E_TRUNCATED;
	switch (buf[0]) {
	case WG_MSG_INITIATION:
		want = WG_MSG_INITIATION_LEN;
		break;
	case WG_MSG_RESPONSE:
		want = WG_MSG_RESPONSE_LEN;
		break;
	case WG_MSG_COOKIE_REPLY:
		want = WG_MSG_COOKIE_REPLY_LEN;
		break;
	case WG_MSG_DATA:
		want = WG_MSG_DATA_MIN_LEN;
		break;
	default:
		return WG_MSG_E_TYPE;
	}
	/* 5.4.2: the type is one byte followed by three reserved zero bytes
	 * (kernel and wireguard-go read the first le32 as the type) */
	if (buf[1] | buf[2] | buf[3])
		return WG_MSG_E_RESERVED;
	if (len < want)
		return WG_MSG_E_TRUNCATED;
	if (buf[0] != WG_MSG_DATA && len != want)
		return WG_MSG_E_LENGTH;
	return buf[0];
}

const char *wg_msg_strerror(int err)
{
	if (err > 0)
		return "ok";
	switch (err) {
	case WG_MSG_E_TRUNCATED:
		return "truncated";
	case WG_MSG_E_TYPE:
		return "unknown message type";
	case WG_MSG_E_RESERVED:
		return "non-zero reserved bytes";
	case WG_MSG_E_LENGTH:
		return "wrong length";
	default:
		return "invalid";
	}
}

const char *wg_msg_type_name(int type)
{
	switch (type) {
	case WG_MSG_INITIATION:
		return "initiation";
	case WG_MSG_RESPONSE:
		return "response";
	case WG_MSG_COOKIE_REPLY:
		return "cookie-reply";
	case WG_MSG_DATA:
		return "data";
	default:
		return "unknown";
	}
}
