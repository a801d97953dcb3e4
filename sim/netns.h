/* netns: named network namespaces made the way `ip netns add` makes them (a
 * namespace file bind-mounted at /run/netns/NAME), so `ip netns exec NAME`
 * works on them; entering and leaving them per thread; sysctls inside them;
 * and finding and killing every process that lives in one. */
#ifndef NATMESH_SIM_NETNS_H
#define NATMESH_SIM_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NETNS_RUN_DIR "/run/netns"

/* creates /run/netns/name holding a new namespace (with lo up); -EEXIST if taken */
int netns_add(const char *name);
/* unmounts and removes /run/netns/name; -ENOENT if absent */
int netns_del(const char *name);
/* an O_RDONLY|O_CLOEXEC descriptor of the named namespace, or -errno */
int netns_open(const char *name);
/* moves the calling thread into the namespace at fd (CLONE_NEWNET) */
int netns_enter(int fd);
/* writes value to /proc/sys/KEY (dots in key become slashes) in the calling
 * thread's current namespace */
int netns_sysctl(const char *key, const char *value);
/* the kernel's PID_MAX_LIMIT on 64-bit: no more processes can exist */
#define NETNS_PIDS_MAX (1U << 22)
/* names listed at once: above any host's user.max_net_namespaces (half of
 * kernel.threads-max, 96367 on a 24 GiB machine); a lab has tens */
#define NETNS_LIST_MAX (1U << 20)

/* pids of the processes whose network namespace is the named one; *out is
 * malloc'd (free it; NULL when there are none), *n its length. 0, -errno,
 * or -ENOSPC past NETNS_PIDS_MAX */
int netns_pids(const char *name, pid_t **out, size_t *n);
/* SIGTERM to every process in the named namespaces, up to grace_ms to go,
 * then SIGKILL; children of the caller are reaped. Returns how many were
 * signalled, or -ENOMEM. */
int netns_kill_all(char *const *names, size_t n, int grace_ms);
/* names under /run/netns starting with prefix; *out is a malloc'd array of
 * malloc'd strings (NULL when there are none). 0, or -ENOMEM or -ENOSPC past
 * NETNS_LIST_MAX, with nothing listed: never a partial list */
int netns_list(const char *prefix, char ***out, size_t *n);
void netns_list_free(char **names, size_t n);

#endif
