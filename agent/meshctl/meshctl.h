/* meshctl: the command-line client. A command is a name and a function in the
 * table of main.c; the admin commands (vpc, reg-key, device, security-group) speak to meshsvc
 * over HTTP(S) with the admin token (service.c); agent commands that speak to
 * meshd's unix socket join the same table. Output is a table for people or JSON
 * (-o json); a refusal from the service is one line on stderr. */
#ifndef NATMESH_MESHCTL_H
#define NATMESH_MESHCTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* the global options */
struct ctl {
	const char *service;	/* --service URL */
	const char *token_file;	/* --token-file */
	const char *ca;		/* --ca: CA bundle for HTTPS */
	bool json;		/* -o json */
};

struct command {
	const char *name;
	const char *usage;	/* the lines of the usage text */
	int (*run)(struct ctl *ctl, int argc, char **argv);	/* argv[0] is the name */
};

extern const struct command admin_commands[];
/* secgroup.c: meshctl security-group */
extern const char secgroup_usage[];
int secgroup_run(struct ctl *ctl, int argc, char **argv);
extern const size_t admin_ncommands;

/* A request to meshsvc: 0 with the answer (NULL for 204), or -1 after one
 * line on stderr saying what went wrong (connection, TLS, or the service's
 * {"error", "field"}). */
int service_request(const struct ctl *ctl, const char *method, const char *path, json_t *body,
		    json_t **out);

/* a column of a table: its title and the object key it shows */
struct column {
	const char *title;
	const char *key;
};
/* rows (an array, or one object) as a table, or as JSON with -o json */
void output(const struct ctl *ctl, const json_t *rows, const struct column *cols, size_t ncols);

#endif
