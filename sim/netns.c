#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rtnl.h"
#include "vec.h"

/* /run/netns must be a shared mount point so that namespace files mounted
 * later show up in every mount namespace, as iproute2 arranges it */
static int run_dir_ready(void)
{
	if (mkdir(NETNS_RUN_DIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	if (mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) < 0)
		return -errno;
	if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0)
		return -errno;
	return 0;
}

static void ns_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", NETNS_RUN_DIR, name);
}

int netns_add(const char *name)
{
	char path[256];
	int fd, self = -1, rc;

	rc = run_dir_ready();
	if (rc)
		return rc;
	ns_path(name, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	close(fd);
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		rc = -errno;
		goto err_file;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		rc = -errno;
		goto err_self;
	}
	if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0) {
		rc = -errno;
		goto err_back;
	}
	rc = rtnl_link_set_up("lo", true);
	if (setns(self, CLONE_NEWNET) < 0 && !rc)
		rc = -errno;
	close(self);
	if (rc)
		netns_del(name);
	return rc;

err_back:
	setns(self, CLONE_NEWNET);
err_self:
	close(self);
err_file:
	unlink(path);
	return rc;
}

int netns_del(const char *name)
{
	char path[256];
	ns_path(name, path, sizeof(path));
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return -errno;
	if (unlink(path) < 0)
		return -errno;
	return 0;
}

int netns_open(const char *name)
{
	char path[256];
	ns_path(name, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int netns_enter(int fd)
{
	return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
}

int netns_sysctl(const char *key, const char *value)
{
	char path[256];
	int n = snprintf(path, sizeof(path), "/proc/sys/%s", key);
	for (int i = 10; i < n; i++)
		if (path[i] == '.')
			path[i] = '/';
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, value, strlen(value));
	int rc = w < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* the pids under /proc whose network namespace is one of want[0..nwant) */
static int pids_in(const struct stat *want, size_t nwant, pid_t **out, size_t *n)
{
	struct vec pids = VEC_INIT(pid_t, NETNS_PIDS_MAX, "namespace pids");
	char path[64];
	DIR *d;
	struct dirent *e;
	int rc = 0;

	*out = NULL;
	*n = 0;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		struct stat st;
		bool match = false;
		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
		if (stat(path, &st) < 0)
			continue;
		for (size_t i = 0; i < nwant && !match; i++)
			match = st.st_ino == want[i].st_ino && st.st_dev == want[i].st_dev;
		if (!match)
			continue;
		const pid_t p = (pid_t)pid;
		if ((rc = vec_append(&pids, &p)) < 0) {
			vec_free(&pids);
			goto out;
		}
	}
	*out = vec_detach(&pids, n);
out:
	closedir(d);
	return rc;
}

int netns_pids(const char *name, pid_t **out, size_t *n)
{
	char path[256];
	struct stat want;
	*out = NULL;
	*n = 0;
	ns_path(name, path, sizeof(path));
	if (stat(path, &want) < 0)
		return -errno;
	return pids_in(&want, 1, out, n);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int netns_kill_all(char *const *names, size_t nnames, int grace_ms)
{
	struct stat *want = calloc(nnames + 1, sizeof(*want));
	size_t nwant = 0;
	int signalled = 0;
	bool killed = false;

	if (!want)
		return -ENOMEM;
	for (size_t i = 0; i < nnames; i++) {
		char path[256];
		ns_path(names[i], path, sizeof(path));
		if (stat(path, &want[nwant]) == 0)
			nwant++;
	}
	/* one pass over /proc per round, for all the namespaces at once */
	for (int waited = 0; nwant; waited += 20) {
		pid_t *pids;
		size_t n;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (pids_in(want, nwant, &pids, &n) < 0)
			break;
		if (n == 0) {
			free(pids);
			break;
		}
		if (waited == 0) {
			for (size_t i = 0; i < n; i++)
				signalled += kill(pids[i], SIGTERM) == 0;
		} else if (!killed && waited >= grace_ms) {
			for (size_t i = 0; i < n; i++)
				kill(pids[i], SIGKILL);
			killed = true;
		}
		free(pids);
		if (waited >= grace_ms + 5000)
			break;
		sleep_ms(20);
	}
	free(want);
	return signalled;
}

int netns_list(const char *prefix, char ***out, size_t *n)
{
	struct vec names = VEC_INIT(char *, NETNS_LIST_MAX, "namespace names");
	DIR *d = opendir(NETNS_RUN_DIR);
	struct dirent *e;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		char **slot;
		if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		if (!(slot = vec_push(&names))) {
			rc = -errno;
			break;
		}
		if (!(*slot = strdup(e->d_name))) {
			rc = -ENOMEM;
			break;
		}
	}
	closedir(d);
	if (rc < 0) {
		/* a refused push added nothing; a failed strdup left NULL */
		for (size_t i = 0; i < names.len; i++)
			free(VEC_PTR(&names, char *, i));
		vec_free(&names);
		return rc;
	}
	*out = vec_detach(&names, n);
	return 0;
}

void netns_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
