/* impaircli: the `meshsim impair run|set|show` verb (see its usage text) */
#ifndef NATMESH_SIM_IMPAIRCLI_H
#define NATMESH_SIM_IMPAIRCLI_H

extern const char sim_impair_usage[];

/* argv[0] is "impair"; returns meshsim's exit code */
int sim_impair_main(int argc, char **argv);

#endif
