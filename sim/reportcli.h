/* reportcli: the `meshsim report RUN_DIR` verb, report.html rebuilt from a
 * kept run folder (see its usage text) */
#ifndef NATMESH_SIM_REPORTCLI_H
#define NATMESH_SIM_REPORTCLI_H

extern const char sim_report_usage[];

/* argv[0] is "report"; returns meshsim's exit code */
int sim_report_main(int argc, char **argv);

#endif
