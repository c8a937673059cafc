/* cli.h: what every vr-* main shares: one option table per program, where
 * each flag is declared once with its destination, its range and its help
 * line (as git's OPT_INTEGER/OPT_STRING); --help/--version, messages and exit
 * codes (0 ok, 1 bad input or runtime failure, 2 usage). Only cmd/ prints and
 * exits; lib/ reports through struct vr_err.
 *
 *   static int group = 8;
 *   static const struct vr_opt opts[] = {
 *       VR_OPT_INT("group", 'G', "N", &group, 1, 1024, "completions per prompt (default 8)"),
 *       VR_OPT_END,
 *   };
 *   int ind = vr_cli_parse(&cli, argc, argv);   (operands are argv[ind..argc))
 */
#ifndef VR_CLI_H
#define VR_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"

enum vr_opt_type {
    VR_OPT_T_END,    /* the table's last row */
    VR_OPT_T_FLAG,   /* int *: set to 1 */
    VR_OPT_T_INT,    /* int *, range [imin, imax] */
    VR_OPT_T_I64,    /* int64_t *, range [imin, imax] */
    VR_OPT_T_U64,    /* uint64_t *: any non-negative integer, 0x... allowed */
    VR_OPT_T_DOUBLE, /* double *, finite, range [dmin, dmax] */
    VR_OPT_T_FLOAT,  /* float *: checked as a double in [dmin, dmax], then rounded */
    VR_OPT_T_STRING, /* const char **: the argument itself (argv outlives the run) */
    VR_OPT_T_CHOICE, /* int-sized *: the index of the argument in choices "a|b|c" */
    VR_OPT_T_CALL,   /* fn(opt, arg, err): custom parsing, repeatable flags */
};

struct vr_opt;
/* A VR_OPT_CALL parser: 0, or -1 with err filled (reported as a usage
 * error). arg is NULL for a switch (an entry without an argument name). */
typedef int vr_opt_fn(const struct vr_opt *opt, const char *arg, struct vr_err *err);

struct vr_opt {
    const char *name;  /* long name without "--" */
    int key;           /* short letter, or 0 for a long-only flag */
    const char *arg;   /* argument name shown in help, NULL for a switch */
    const char *help;  /* one line */
    enum vr_opt_type type;
    void *dst;
    int64_t imin, imax;   /* VR_OPT_T_INT, VR_OPT_T_I64 */
    double dmin, dmax;    /* VR_OPT_T_DOUBLE, VR_OPT_T_FLOAT */
    const char *choices;  /* VR_OPT_T_CHOICE */
    vr_opt_fn *fn;        /* VR_OPT_T_CALL */
};

/* The destination's type is checked at compile time: a pointer of another
 * type is a -Werror warning (conditional with a typed null pointer), a
 * CHOICE destination must have an int's size (an enum). */
#define VR_OPT_DST_(T, p) ((void *)(1 ? (p) : (T *)0))
#define VR_OPT_INTSIZED_(p) ((void *)((char *)(p) + 0 * sizeof(char[sizeof *(p) == sizeof(int) ? 1 : -1])))

#define VR_OPT_FLAG(name, key, dst, help) \
    {name, key, NULL, help, VR_OPT_T_FLAG, VR_OPT_DST_(int, dst), 0, 0, 0, 0, NULL, NULL}
#define VR_OPT_INT(name, key, arg, dst, min, max, help) \
    {name, key, arg, help, VR_OPT_T_INT, VR_OPT_DST_(int, dst), min, max, 0, 0, NULL, NULL}
#define VR_OPT_I64(name, key, arg, dst, min, max, help) \
    {name, key, arg, help, VR_OPT_T_I64, VR_OPT_DST_(int64_t, dst), min, max, 0, 0, NULL, NULL}
#define VR_OPT_U64(name, key, arg, dst, help) \
    {name, key, arg, help, VR_OPT_T_U64, VR_OPT_DST_(uint64_t, dst), 0, 0, 0, 0, NULL, NULL}
#define VR_OPT_DOUBLE(name, key, arg, dst, min, max, help) \
    {name, key, arg, help, VR_OPT_T_DOUBLE, VR_OPT_DST_(double, dst), 0, 0, min, max, NULL, NULL}
#define VR_OPT_FLOAT(name, key, arg, dst, min, max, help) \
    {name, key, arg, help, VR_OPT_T_FLOAT, VR_OPT_DST_(float, dst), 0, 0, min, max, NULL, NULL}
#define VR_OPT_STRING(name, key, arg, dst, help) \
    {name, key, arg, help, VR_OPT_T_STRING, VR_OPT_DST_(const char *, dst), 0, 0, 0, 0, NULL, NULL}
#define VR_OPT_CHOICE(name, key, arg, dst, choices, help) \
    {name, key, arg, help, VR_OPT_T_CHOICE, VR_OPT_INTSIZED_(dst), 0, 0, 0, 0, choices, NULL}
#define VR_OPT_CALL(name, key, arg, fn, dst, help) \
    {name, key, arg, help, VR_OPT_T_CALL, dst, 0, 0, 0, 0, NULL, fn}
#define VR_OPT_END {NULL, 0, NULL, NULL, VR_OPT_T_END, NULL, 0, 0, 0, 0, NULL, NULL}

struct vr_cli {
    const char *prog;      /* "vr-prep" */
    const char *synopsis;  /* "[OPTION]... [FILE]..." */
    const char *about;     /* one paragraph shown after the usage line */
    const struct vr_opt *opts; /* ends with VR_OPT_END */
};

/* Set the program name, restore default SIGPIPE (a closed pipe ends a stage
 * quietly), parse the options into their destinations and return the index
 * of the first operand. --help (to stdout) and --version exit 0; a bad flag
 * or value is a usage error (exit 2). */
int vr_cli_parse(const struct vr_cli *cli, int argc, char **argv);
/* The same without exiting or printing to stderr: 0 with *ind the first
 * operand, 1 when --help or --version was written to out, -1 with err filled
 * (kind VR_ERR_USAGE). For tests and for vr_cli_parse. */
int vr_cli_parse_args(const struct vr_cli *cli, int argc, char **argv, FILE *out, int *ind,
                      struct vr_err *err);
/* The --help text, generated from the table. */
void vr_cli_help(const struct vr_cli *cli, FILE *out);

/* Messages: "prog: ..." on stderr. */
void vr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The library's callbacks: a warning as vr_warn; a finished line ("...\n")
 * on stdout, flushed at once, and a closed or full stdout (| head, a full
 * disk) an error naming what ctx (a string, or NULL) says the lines are, so
 * that the caller can save its work before it stops. */
void vr_cli_warn(void *ctx, const char *msg);
int vr_cli_put_line(void *ctx, const char *line, struct vr_err *err);
/* Print err (and its hint) and exit: 2 for VR_ERR_USAGE, else 1. */
__attribute__((noreturn)) void vr_die(const struct vr_err *err);
__attribute__((noreturn, format(printf, 1, 2))) void vr_die_msg(const char *fmt, ...);
/* Usage error: message plus "Try 'prog --help'.", exit 2. */
__attribute__((noreturn, format(printf, 1, 2))) void vr_die_usage(const char *fmt, ...);

/* Flag values with range checks, for VR_OPT_CALL parsers and values inside
 * an argument: 0, or -1 with a usage error naming --flag in err. */
int vr_cli_get_int(const char *flag, const char *arg, int64_t min, int64_t max, int64_t *out,
                   struct vr_err *err);
int vr_cli_get_double(const char *flag, const char *arg, double min, double max, double *out,
                      struct vr_err *err);
int vr_cli_get_u64(const char *flag, const char *arg, uint64_t *out, struct vr_err *err);

extern const char *vr_prog;

#endif
