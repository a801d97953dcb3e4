/* api_metrics: GET /healthz and GET /metrics (Prometheus text format): the
 * requests answered by route, method and status, the devices, VPCs and
 * waiters, the group commit's counters, the guard's refusals and the key
 * challenges. */
#include <stdio.h>
#include <stdlib.h>

#include "api_internal.h"

/* the statuses the API answers with, for the request counters */
static const unsigned codes[API_NCODES] = { 200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 429, 500, 503 };

void api_count(struct api *api, const struct request *rq, unsigned status)
{
	for (size_t i = 0; i < API_NCODES; i++) {
		if (codes[i] == status) {
			api->requests[rq->route][rq->method][i]++;
			return;
		}
	}
}

enum MHD_Result api_healthz(struct api *api, struct MHD_Connection *c, struct request *rq,
			    const json_t *body)
{
	(void)body;
	if (!store_available(api->store))
		return api_send_json(api, c, rq, MHD_HTTP_SERVICE_UNAVAILABLE,
				     json_pack("{s:s, s:s}", "status", "unavailable", "database", "unavailable"));
	return api_send_json(api, c, rq, MHD_HTTP_OK, json_pack("{s:s, s:s}", "status", "ok", "database", "ok"));
}

enum MHD_Result api_metrics(struct api *api, struct MHD_Connection *c, struct request *rq,
			    const json_t *body)
{
	struct MHD_Response *resp;
	struct challenge_stats ch;
	struct store_stats stats;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)body;
	if (!f)
		return MHD_NO;
	/* this request is answered after the text is built; count it first */
	api_count(api, rq, MHD_HTTP_OK);
	rq->counted = true;
	store_stats(api->store, &stats);
	fputs("# HELP meshsvc_http_requests_total HTTP requests answered, by route, method and status.\n"
	      "# TYPE meshsvc_http_requests_total counter\n", f);
	for (int r = 0; r < R_COUNT; r++)
		for (int m = 0; m < M_COUNT; m++)
			for (size_t i = 0; i < API_NCODES; i++)
				if (api->requests[r][m][i])
					fprintf(f, "meshsvc_http_requests_total{route=\"%s\",method=\"%s\",code=\"%u\"} %llu\n",
						api_route_names[r], api_method_names[m], codes[i],
						(unsigned long long)api->requests[r][m][i]);
	fprintf(f, "# HELP meshsvc_devices Registered devices.\n# TYPE meshsvc_devices gauge\n"
		   "meshsvc_devices %llu\n"
		   "# HELP meshsvc_vpcs VPCs.\n# TYPE meshsvc_vpcs gauge\nmeshsvc_vpcs %llu\n"
		   "# HELP meshsvc_watch_waiters Long polls waiting for a change.\n"
		   "# TYPE meshsvc_watch_waiters gauge\nmeshsvc_watch_waiters %zu\n"
		   "# HELP meshsvc_watch_refused_total Long polls answered at once: too many waiting.\n"
		   "# TYPE meshsvc_watch_refused_total counter\nmeshsvc_watch_refused_total %llu\n",
		(unsigned long long)store_device_count(api->store),
		(unsigned long long)store_vpc_count(api->store), watch_count(api->watch),
		(unsigned long long)watch_refused(api->watch));
	fprintf(f, "# HELP meshsvc_commits_total Database transactions committed with writes (an fsync each).\n"
		   "# TYPE meshsvc_commits_total counter\nmeshsvc_commits_total %llu\n"
		   "# HELP meshsvc_writes_total Writes those commits made durable (group commit: several a commit).\n"
		   "# TYPE meshsvc_writes_total counter\nmeshsvc_writes_total %llu\n"
		   "# HELP meshsvc_commit_failures_total Commits that failed; their writes were answered with 500.\n"
		   "# TYPE meshsvc_commit_failures_total counter\nmeshsvc_commit_failures_total %llu\n"
		   "# HELP meshsvc_log_lines_early_total Log lines about writes written before their commit (too many held).\n"
		   "# TYPE meshsvc_log_lines_early_total counter\nmeshsvc_log_lines_early_total %llu\n",
		(unsigned long long)stats.commits, (unsigned long long)stats.writes,
		(unsigned long long)stats.failed_commits, (unsigned long long)api->notes.early);
	fprintf(f, "# HELP meshsvc_connections_refused_total Connections refused at the connection limit, total or per address.\n"
		   "# TYPE meshsvc_connections_refused_total counter\nmeshsvc_connections_refused_total %llu\n"
		   "# HELP meshsvc_request_head_timeouts_total Connections closed for a request head not complete in time.\n"
		   "# TYPE meshsvc_request_head_timeouts_total counter\nmeshsvc_request_head_timeouts_total %llu\n",
		(unsigned long long)api->guard.refused, (unsigned long long)api->guard.head_timeouts);
	fprintf(f, "# HELP meshsvc_long_polls_refused_total Long polls refused with 429: their token had too many waiting.\n"
		   "# TYPE meshsvc_long_polls_refused_total counter\nmeshsvc_long_polls_refused_total %llu\n"
		   "# HELP meshsvc_long_polls_hung_up_total Long polls closed while waiting: their client hung up.\n"
		   "# TYPE meshsvc_long_polls_hung_up_total counter\nmeshsvc_long_polls_hung_up_total %llu\n",
		(unsigned long long)api->polls_refused, (unsigned long long)api->polls_hung_up);
	fprintf(f, "# HELP meshsvc_list_builds_total Peer lists built from the database.\n"
		   "# TYPE meshsvc_list_builds_total counter\nmeshsvc_list_builds_total %llu\n"
		   "# HELP meshsvc_list_cache_hits_total Peer lists served from the cache.\n"
		   "# TYPE meshsvc_list_cache_hits_total counter\nmeshsvc_list_cache_hits_total %llu\n",
		(unsigned long long)api->list_builds, (unsigned long long)api->list_hits);
	challenge_stats(api->challenges, &ch);
	fprintf(f, "# HELP meshsvc_challenges Key challenges issued and not yet used or expired.\n"
		   "# TYPE meshsvc_challenges gauge\nmeshsvc_challenges %llu\n"
		   "# HELP meshsvc_challenges_issued_total Key challenges issued.\n"
		   "# TYPE meshsvc_challenges_issued_total counter\nmeshsvc_challenges_issued_total %llu\n"
		   "# HELP meshsvc_challenges_evicted_total Key challenges evicted unused by newer ones (the table was full).\n"
		   "# TYPE meshsvc_challenges_evicted_total counter\nmeshsvc_challenges_evicted_total %llu\n"
		   "# HELP meshsvc_challenges_expired_total Key challenges that expired unused, or were answered too late.\n"
		   "# TYPE meshsvc_challenges_expired_total counter\nmeshsvc_challenges_expired_total %llu\n"
		   "# HELP meshsvc_key_proofs_refused_total Key proofs refused (403): wrong, expired, used or for another key.\n"
		   "# TYPE meshsvc_key_proofs_refused_total counter\nmeshsvc_key_proofs_refused_total %llu\n"
		   "# HELP meshsvc_devices_reclaimed_total Registered devices reclaimed with a key proof.\n"
		   "# TYPE meshsvc_devices_reclaimed_total counter\nmeshsvc_devices_reclaimed_total %llu\n",
		(unsigned long long)ch.live, (unsigned long long)ch.issued, (unsigned long long)ch.evicted,
		(unsigned long long)ch.expired, (unsigned long long)ch.refused, (unsigned long long)api->reclaims);
	if (fclose(f) != 0) {
		free(text);
		return MHD_NO;
	}
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
	return api_queue(api, c, rq, MHD_HTTP_OK, resp);
}
