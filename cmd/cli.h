/* cli.h: what every vr-* main shares: one option table per program (each flag
 * declared once, with its help line), --help/--version, messages and exit
 * codes (0 ok, 1 bad input or runtime failure, 2 usage). Only cmd/ prints and
 * exits; lib/ reports through struct vr_err. */
#ifndef VR_CLI_H
#define VR_CLI_H

#include <stdint.h>

#include "err.h"

struct vr_opt {
    const char *name;  /* long name without "--" */
    int key;           /* short letter, or an id >= 256 for long-only flags */
    const char *arg;   /* argument name shown in help, NULL for a switch */
    const char *help;  /* one line */
};

struct vr_cli {
    const char *prog;      /* "vr-prep" */
    const char *synopsis;  /* "[OPTION]... [FILE]..." */
    const char *about;     /* one paragraph shown after the usage line */
    const struct vr_opt *opts; /* ends with {0} */
};

/* Set the program name, restore default SIGPIPE (a closed pipe ends a stage
 * quietly), and remember the table for vr_cli_next. */
void vr_cli_init(const struct vr_cli *cli, int argc, char **argv);
/* Next option: its key, with *arg set for options that take one; -1 when
 * the options are done (remaining arguments start at *optind_out). Handles
 * --help (usage to stdout, exit 0), --version and bad flags (exit 2). */
int vr_cli_next(int *optind_out, const char **arg);
void vr_cli_usage(void);

/* Messages: "prog: ..." on stderr. */
void vr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print err (and its hint) and exit: 2 for VR_ERR_USAGE, else 1. */
__attribute__((noreturn)) void vr_die(const struct vr_err *err);
__attribute__((noreturn, format(printf, 1, 2))) void vr_die_msg(const char *fmt, ...);
/* Usage error: message plus "Try 'prog --help'.", exit 2. */
__attribute__((noreturn, format(printf, 1, 2))) void vr_die_usage(const char *fmt, ...);

/* Parse flag values with range checks (usage error naming the flag). */
int64_t vr_cli_int(const char *flag, const char *arg, int64_t min, int64_t max);
double vr_cli_double(const char *flag, const char *arg, double min, double max);
uint64_t vr_cli_u64(const char *flag, const char *arg);

extern const char *vr_prog;

#endif
