/* gridcli: the `meshsim grid [--out FILE] RUN_DIR...` verb, the NAT pair
 * grid of a set of pair runs (see grid.h and its usage text) */
#ifndef NATMESH_SIM_GRIDCLI_H
#define NATMESH_SIM_GRIDCLI_H

extern const char sim_grid_usage[];

/* argv[0] is "grid"; returns meshsim's exit code */
int sim_grid_main(int argc, char **argv);

#endif
