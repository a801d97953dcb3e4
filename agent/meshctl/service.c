#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meshctl.h"
#include "svcurl.h"

#define ANSWER_MAX (64 * 1024 * 1024)

struct buf {
	char *data;
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t add = size * n;
	if (b->len + add > ANSWER_MAX)
		return 0;
	char *d = realloc(b->data, b->len + add + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, p, add);
	b->data = d;
	b->len += add;
	b->data[b->len] = 0;
	return add;
}

/* the token file's first word; a file that group or others may read is
 * refused, the fix named: the admin token opens everything */
static int read_token(const char *path, char *out, size_t len)
{
	struct stat sb;
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "meshctl: cannot read the token file %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &sb) < 0) {
		fprintf(stderr, "meshctl: cannot read the token file %s: %s\n", path, strerror(errno));
		fclose(f);
		return -1;
	}
	if (sb.st_mode & 077) {
		fprintf(stderr, "meshctl: the token file %s may be read by group or others (mode %03o): chmod 600 %s\n",
			path, (unsigned)(sb.st_mode & 0777), path);
		fclose(f);
		return -1;
	}
	if (!fgets(out, (int)len, f))
		out[0] = 0;
	fclose(f);
	out[strcspn(out, " \t\r\n")] = 0;
	if (!out[0]) {
		fprintf(stderr, "meshctl: the token file %s is empty\n", path);
		return -1;
	}
	return 0;
}

/* One request to the replica at base. 0 with *out; 1 when this replica
 * failed (no connection, a timeout, a 5xx: another may answer; why says
 * what happened); -1 when the service refused (said on stderr). */
static int request_one(const struct ctl *ctl, const char *base, const char *token, const char *method,
		       const char *path, const char *text, json_t **out, char *why, size_t whylen)
{
	char auth[300], url[2048], err[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct buf ans = { 0 };
	long status = 0;
	CURLcode cc;
	CURL *c;
	int rc = -1;

	snprintf(url, sizeof(url), "%s%s", base, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	if (!(c = curl_easy_init()))
		return -1;
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (text) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &ans);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (ctl->ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, ctl->ca);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		snprintf(why, whylen, "cannot reach %s: %s", base, err[0] ? err : curl_easy_strerror(cc));
		rc = 1;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	json_t *j = ans.len ? json_loadb(ans.data, ans.len, 0, NULL) : NULL;
	if (status < 200 || status > 299) {
		const char *msg = json_string_value(json_object_get(j, "error"));
		const char *field = json_string_value(json_object_get(j, "field"));
		snprintf(why, whylen, "%s %s: HTTP %ld: %s%s%s%s", method, path, status,
			 msg ? msg : "no explanation", field ? " (field " : "", field ? field : "", field ? ")" : "");
		json_decref(j);
		if (status >= 500) {
			rc = 1;
			goto out;
		}
		fprintf(stderr, "meshctl: %s\n", why);
		goto out;
	}
	if (ans.len && !j) {
		fprintf(stderr, "meshctl: %s %s: the answer is not JSON\n", method, path);
		goto out;
	}
	*out = j;
	rc = 0;
out:
	memset(auth, 0, sizeof(auth));
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(ans.data);
	return rc;
}

/* The request to the replicas in the order given (--service repeated or a
 * comma list): the next one is tried when one fails; a refusal is final. */
int service_request(const struct ctl *ctl, const char *method, const char *path, json_t *body,
		    json_t **out)
{
	struct svcurl_list l;
	char token[256], why[512] = "";
	char *text = NULL;
	int rc = -1;

	*out = NULL;
	if (!ctl->service || !ctl->token_file) {
		fprintf(stderr, "meshctl: give --service URL and --token-file FILE (or MESHCTL_SERVICE, MESHCTL_TOKEN_FILE)\n");
		return -1;
	}
	if (svcurl_split(ctl->service, &l, why, sizeof(why)) < 0) {
		fprintf(stderr, "meshctl: bad --service: %s\n", why);
		return -1;
	}
	if (read_token(ctl->token_file, token, sizeof(token)) < 0)
		return -1;
	if (body)
		text = json_dumps(body, JSON_COMPACT);
	for (size_t i = 0; i < l.n; i++) {
		rc = request_one(ctl, l.url[i], token, method, path, text, out, why, sizeof(why));
		if (rc != 1)
			break;
		if (i + 1 < l.n)
			fprintf(stderr, "meshctl: %s; trying %s\n", why, l.url[i + 1]);
		else
			fprintf(stderr, "meshctl: %s\n", why);
	}
	memset(token, 0, sizeof(token));
	free(text);
	return rc == 0 ? 0 : -1;
}
