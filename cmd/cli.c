/* cli.c: option tables, help, messages and exit codes for cmd/ (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *vr_prog = "vr";

/* getopt values: a flag's short letter when it has one (so that getopt's
 * "needs an argument" names it), else LONG_BASE + its row. */
enum { OPT_HELP = 'h', OPT_VERSION = 0x7fff, LONG_BASE = 256 };

void vr_cli_help(const struct vr_cli *cli, FILE *out)
{
    fprintf(out, "Usage: %s %s\n%s\n\nOptions:\n", cli->prog, cli->synopsis, cli->about);
    for (const struct vr_opt *o = cli->opts; o->type != VR_OPT_T_END; o++) {
        char left[64];
        if (o->key)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->key, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(out, "  %-28s %s\n", left, o->help);
    }
    fprintf(out, "  %-28s %s\n", "-h, --help", "show this help and exit");
    fprintf(out, "  %-28s %s\n", "    --version", "show the version and exit");
    fprintf(out, "\nSee %s(1).\n", cli->prog);
}

static int usage(struct vr_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage(struct vr_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err->kind = VR_ERR_USAGE;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    err->hint[0] = 0;
    va_end(ap);
    return -1;
}

int vr_cli_get_int(const char *flag, const char *arg, int64_t min, int64_t max, int64_t *out,
                   struct vr_err *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end) return usage(err, "--%s: '%s' is not an integer", flag, arg);
    if (v < min || v > max)
        return usage(err, "--%s: %lld is out of range [%lld, %lld]", flag, v, (long long)min,
                     (long long)max);
    *out = v;
    return 0;
}

int vr_cli_get_u64(const char *flag, const char *arg, uint64_t *out, struct vr_err *err)
{
    char *end;
    errno = 0;
    if (arg[0] == '-') return usage(err, "--%s: '%s' is negative", flag, arg);
    unsigned long long v = strtoull(arg, &end, 0);
    if (errno || end == arg || *end) return usage(err, "--%s: '%s' is not an integer", flag, arg);
    *out = v;
    return 0;
}

int vr_cli_get_double(const char *flag, const char *arg, double min, double max, double *out,
                      struct vr_err *err)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v))
        return usage(err, "--%s: '%s' is not a number", flag, arg);
    if (v < min || v > max) return usage(err, "--%s: %g is out of range [%g, %g]", flag, v, min, max);
    *out = v;
    return 0;
}

/* The index of arg among "a|b|c", or -1. */
static int choice_index(const char *choices, const char *arg)
{
    size_t n = strlen(arg);
    int i = 0;
    for (const char *p = choices;; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, arg, n) == 0) return i;
        if (!bar) return -1;
        p = bar + 1;
    }
}

/* "--loss: 'x' is not grpo, bnpo, dapo or dr_grpo" */
static int bad_choice(const struct vr_opt *o, const char *arg, struct vr_err *err)
{
    char list[512] = "";
    size_t k = 0;
    for (const char *p = o->choices; *p && k + 4 < sizeof list; p++) {
        if (*p != '|') {
            list[k++] = *p;
            continue;
        }
        const char *sep = strchr(p + 1, '|') ? ", " : " or ";
        k += (size_t)snprintf(list + k, sizeof list - k, "%s", sep);
    }
    list[k < sizeof list ? k : sizeof list - 1] = 0;
    return usage(err, "--%s: '%s' is not %s", o->name, arg, list);
}

/* One option's argument into its destination. */
static int set_opt(const struct vr_opt *o, const char *arg, struct vr_err *err)
{
    int64_t i;
    double d;
    switch (o->type) {
    case VR_OPT_T_FLAG: *(int *)o->dst = 1; return 0;
    case VR_OPT_T_STRING: *(const char **)o->dst = arg; return 0;
    case VR_OPT_T_INT:
        if (vr_cli_get_int(o->name, arg, o->imin, o->imax, &i, err)) return -1;
        *(int *)o->dst = (int)i;
        return 0;
    case VR_OPT_T_I64: return vr_cli_get_int(o->name, arg, o->imin, o->imax, o->dst, err);
    case VR_OPT_T_U64: return vr_cli_get_u64(o->name, arg, o->dst, err);
    case VR_OPT_T_DOUBLE: return vr_cli_get_double(o->name, arg, o->dmin, o->dmax, o->dst, err);
    case VR_OPT_T_FLOAT:
        if (vr_cli_get_double(o->name, arg, o->dmin, o->dmax, &d, err)) return -1;
        *(float *)o->dst = (float)d;
        return 0;
    case VR_OPT_T_CHOICE: {
        int c = choice_index(o->choices, arg);
        if (c < 0) return bad_choice(o, arg, err);
        *(int *)o->dst = c;
        return 0;
    }
    case VR_OPT_T_CALL:
        if (o->fn(o, arg, err) == 0) return 0;
        err->kind = VR_ERR_USAGE;
        return -1;
    case VR_OPT_T_END: break;
    }
    VR_ASSERT(!"an option without a type");
    return -1;
}

/* getopt refused elem: which flag, and why. */
static int bad_flag(const struct vr_cli *cli, const char *elem, const char *shorts, struct vr_err *err)
{
    if (strncmp(elem, "--", 2) != 0) {
        if (optopt && optopt < 128 && strchr(shorts, optopt))
            return usage(err, "option '-%c' needs an argument", optopt);
        return usage(err, "unknown option '-%c'", optopt);
    }
    size_t n = strcspn(elem + 2, "=");
    const char *name = NULL;
    int matches = 0;
    for (int i = 0; cli->opts[i].type != VR_OPT_T_END; i++) {
        const struct vr_opt *o = &cli->opts[i];
        if (optopt && optopt == (o->key ? o->key : LONG_BASE + i))
            return usage(err, o->arg ? "option '--%s' needs an argument" : "option '--%s' takes no argument",
                         o->name);
        matches += strncmp(o->name, elem + 2, n) == 0;
    }
    if (optopt == OPT_HELP) name = "help";
    if (optopt == OPT_VERSION) name = "version";
    if (name) return usage(err, "option '--%s' takes no argument", name);
    matches += strncmp("help", elem + 2, n) == 0 || strncmp("version", elem + 2, n) == 0;
    return usage(err, matches > 1 ? "ambiguous option '%s'" : "unknown option '%s'", elem);
}

int vr_cli_parse_args(const struct vr_cli *cli, int argc, char **argv, FILE *out, int *ind,
                      struct vr_err *err)
{
    int n = 0;
    while (cli->opts[n].type != VR_OPT_T_END) n++;
    struct option *lo = vr_xcalloc((size_t)n + 3, sizeof *lo);
    char shorts[256];
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        const struct vr_opt *o = &cli->opts[i];
        VR_ASSERT(o->key >= 0 && o->key < 128 && o->key != 'h' && k + 3 < sizeof shorts);
        lo[i] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL,
                                o->key ? o->key : LONG_BASE + i};
        if (o->key) {
            shorts[k++] = (char)o->key;
            if (o->arg) shorts[k++] = ':';
        }
    }
    lo[n] = (struct option){"help", no_argument, NULL, OPT_HELP};
    lo[n + 1] = (struct option){"version", no_argument, NULL, OPT_VERSION};
    shorts[k++] = 'h';
    shorts[k] = 0;

    int rc = 0, c;
    opterr = 0;
    optind = 0; /* GNU getopt: start afresh (a test parses several times) */
    while (rc == 0 && (c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        if (c == OPT_HELP || c == OPT_VERSION) {
            if (c == OPT_HELP) vr_cli_help(cli, out);
            else fprintf(out, "%s %s\n", cli->prog, VR_VERSION);
            rc = 1;
        } else if (c == '?' || c == ':') {
            rc = bad_flag(cli, argv[optind - 1], shorts, err);
        } else {
            int i = c >= LONG_BASE ? c - LONG_BASE : 0;
            while (c < LONG_BASE && cli->opts[i].key != c) i++;
            rc = set_opt(&cli->opts[i], optarg, err);
        }
    }
    *ind = optind;
    free(lo);
    return rc;
}

int vr_cli_parse(const struct vr_cli *cli, int argc, char **argv)
{
    vr_prog = cli->prog;
    signal(SIGPIPE, SIG_DFL);
    struct vr_err err;
    int ind, rc = vr_cli_parse_args(cli, argc, argv, stdout, &ind, &err);
    if (rc > 0) exit(0);
    if (rc < 0) vr_die(&err);
    return ind;
}

/* "prog: message\n" on stderr. */
static void vmsg(const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", vr_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void vr_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void vr_cli_warn(void *ctx, const char *msg)
{
    (void)ctx;
    vr_warn("%s", msg);
}

int vr_cli_put_line(void *ctx, const char *line, struct vr_err *err)
{
    fputs(line, stdout);
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    int e = errno;
    return vr_err_set(err, VR_ERR_SYS, "<stdout>", 0, "cannot write %s: %s", ctx ? (const char *)ctx : "the output",
                      strerror(e));
}

void vr_die(const struct vr_err *err)
{
    fprintf(stderr, "%s: %s\n", vr_prog, err->msg);
    if (err->hint[0]) fprintf(stderr, "hint: %s\n", err->hint);
    else if (err->kind == VR_ERR_USAGE) fprintf(stderr, "Try '%s --help'.\n", vr_prog); /* as vr_die_usage */
    exit(err->kind == VR_ERR_USAGE ? 2 : 1);
}

void vr_die_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    exit(1);
}

void vr_die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", vr_prog);
    exit(2);
}
