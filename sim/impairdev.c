/* The veth ends either side of a delay line: segmentation offloads off (so
 * the line sees frames of at most the MTU and decides per packet), threaded
 * receive for an end the line sends into, and the lab's names for them. */
#include "impairdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

void impair_lab_devs(size_t k, char a[IFNAMSIZ], char b[IFNAMSIZ])
{
	snprintf(a, IFNAMSIZ, "imp.%zu.n", k % 10000000);
	snprintf(b, IFNAMSIZ, "imp.%zu.b", k % 10000000);
}

static bool offload_to_clear(const char *name)
{
	return strstr(name, "segmentation") || !strncmp(name, "rx-gro", 6) || !strncmp(name, "tx-gso", 6) ||
	       !strcmp(name, "rx-udp-gro-forwarding");
}

/* one feature by its ethtool name on or off */
static int set_feature(int fd, struct ifreq *ifr, const char *want, bool on);

int impair_receive_threaded(const char *ifname)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;
	struct ifreq ifr = { 0 };
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	rc = set_feature(fd, &ifr, "rx-gro", true);
	close(fd);
	if (rc)
		return rc;
	/* /sys/class/net shows the namespace that mounted sysfs: a child with a
	 * mount namespace of its own mounts this one's, as `ip netns exec` does */
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char path[64 + IFNAMSIZ];
		if (unshare(CLONE_NEWNS) < 0 || mount("", "/", "none", MS_SLAVE | MS_REC, NULL) < 0)
			_exit(1);
		umount2("/sys", MNT_DETACH);
		if (mount("sysfs", "/sys", "sysfs", 0, NULL) < 0)
			_exit(1);
		snprintf(path, sizeof(path), "/sys/class/net/%s/threaded", ifname);
		int f = open(path, O_WRONLY | O_CLOEXEC);
		_exit(f >= 0 && write(f, "1", 1) == 1 ? 0 : 1);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

int impair_offloads_off(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	int rc = set_feature(fd, &ifr, NULL, false);
	close(fd);
	return rc;
}

/* the features named want (NULL: every offload_to_clear one) set to on,
 * by their names in the ETH_SS_FEATURES string set */
static int set_feature(int fd, struct ifreq *ifr, const char *want, bool on)
{
	struct ethtool_sset_info *info = NULL;
	struct ethtool_gstrings *names = NULL;
	struct ethtool_sfeatures *sf = NULL;
	int rc = 0;

	info = calloc(1, sizeof(*info) + sizeof(uint32_t));
	if (!info) {
		rc = -ENOMEM;
		goto out;
	}
	info->cmd = ETHTOOL_GSSET_INFO;
	info->sset_mask = 1ULL << ETH_SS_FEATURES;
	ifr->ifr_data = (void *)info;
	if (ioctl(fd, SIOCETHTOOL, ifr) < 0) {
		rc = -errno;
		goto out;
	}
	uint32_t n = info->sset_mask ? info->data[0] : 0, blocks = (n + 31) / 32;
	names = calloc(1, sizeof(*names) + (size_t)n * ETH_GSTRING_LEN);
	sf = calloc(1, sizeof(*sf) + blocks * sizeof(sf->features[0]));
	if (!names || !sf) {
		rc = -ENOMEM;
		goto out;
	}
	names->cmd = ETHTOOL_GSTRINGS;
	names->string_set = ETH_SS_FEATURES;
	names->len = n;
	ifr->ifr_data = (void *)names;
	if (ioctl(fd, SIOCETHTOOL, ifr) < 0) {
		rc = -errno;
		goto out;
	}
	sf->cmd = ETHTOOL_SFEATURES;
	sf->size = blocks;
	for (uint32_t i = 0; i < n; i++) {
		char name[ETH_GSTRING_LEN + 1];
		memcpy(name, names->data + (size_t)i * ETH_GSTRING_LEN, ETH_GSTRING_LEN);
		name[ETH_GSTRING_LEN] = '\0';
		if (want ? !strcmp(name, want) : offload_to_clear(name)) {
			sf->features[i / 32].valid |= 1U << (i % 32);
			if (on)
				sf->features[i / 32].requested |= 1U << (i % 32);
		}
	}
	ifr->ifr_data = (void *)sf;
	if (ioctl(fd, SIOCETHTOOL, ifr) < 0)
		rc = -errno;
out:
	free(info);
	free(names);
	free(sf);
	return rc;
}

