/* local: meshctl's commands for the agent on this host (status, peers,
 * ping), spoken over meshd's control socket /run/meshd/IFNAME.sock:
 *
 *   meshctl [--ifname NAME | --control PATH] [-o table|json] status
 *   meshctl [--ifname NAME | --control PATH] [-o table|json] peers
 *   meshctl [--ifname NAME | --control PATH] [-o table|json] ping PEER
 *
 * meshctl's main hands its argv here first; the admin commands (vpc,
 * reg-key, device) go on to the service as before. */
#ifndef NATMESH_MESHCTL_LOCAL_H
#define NATMESH_MESHCTL_LOCAL_H

/* -1 when argv's command is not one of these (the caller goes on), else the
 * exit status: 0, 1 (the agent said no, or is not running), 2 (usage) */
int meshctl_local_dispatch(int argc, char **argv);

#endif
