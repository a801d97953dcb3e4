/* api_challenge: POST /api/devices/challenge, and the check of the key proof
 * a registration answers it with (challenge.h, keyproof.h). A device that
 * lost its token but holds its private key asks for a challenge with its
 * registration key, and registers again with the key and the proof: the
 * same device comes back (store_device_reclaim). */
#include <errno.h>
#include <sodium.h>

#include "api_internal.h"

enum MHD_Result api_device_challenge(struct api *api, struct MHD_Connection *c, struct request *rq,
				     const json_t *body)
{
	uint8_t pub[WG_KEY_BYTES], nonce[KEYPROOF_CHALLENGE_BYTES], service_pub[KEYPROOF_KEY_BYTES];
	char nonce_b64[WG_KEY_B64LEN], service_b64[WG_KEY_B64LEN];
	struct verr e;

	if (validate_challenge_request(body, pub, &e) < 0)
		return api_send_verr(api, c, rq, &e);
	/* issued whether or not the key is registered: the answer tells a
	 * registration key nothing about the VPC's devices */
	challenge_issue(api->challenges, pub, rq->who.id, api_now_us() / 1000, nonce, service_pub);
	wgkey_format(nonce, nonce_b64);
	wgkey_format(service_pub, service_b64);
	return api_send_json(api, c, rq, MHD_HTTP_OK,
			     json_pack("{s:s, s:s, s:I}", "challenge", nonce_b64, "service_key", service_b64,
				       "expires_in_s", (json_int_t)(challenge_ttl_ms(api->challenges) / 1000)));
}

int api_proof_check(struct api *api, const struct request *rq, const struct device_spec *spec,
		    const char **why)
{
	int rc = challenge_take(api->challenges, spec->proof_challenge, spec->public_key, rq->who.id,
				spec->proof_mac, api_now_us() / 1000);

	switch (rc) {
	case 0:
		*why = "";
		break;
	case -ENOENT:
		*why = "unknown challenge: never issued, already used or evicted; ask for a new one";
		break;
	case -ETIMEDOUT:
		*why = "the challenge expired; ask for a new one";
		break;
	case -EXDEV:
		*why = "the challenge was issued for another public key or registration key";
		break;
	default:
		*why = "the MAC does not answer the challenge with this public key's private key";
		break;
	}
	return rc;
}
