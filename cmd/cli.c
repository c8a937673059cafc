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
static const struct vr_cli *g_cli;
static int g_argc;
static char **g_argv;
static struct option *g_long;
static char g_short[256];

enum { OPT_HELP = 'h', OPT_VERSION = 0x7fff };

void vr_cli_init(const struct vr_cli *cli, int argc, char **argv)
{
    g_cli = cli;
    g_argc = argc;
    g_argv = argv;
    vr_prog = cli->prog;
    signal(SIGPIPE, SIG_DFL);
    int n = 0;
    while (cli->opts[n].name) n++;
    g_long = vr_xcalloc((size_t)n + 3, sizeof *g_long);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        const struct vr_opt *o = &cli->opts[i];
        g_long[i] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL, o->key};
        if (o->key > 0 && o->key < 128) {
            g_short[k++] = (char)o->key;
            if (o->arg) g_short[k++] = ':';
        }
    }
    g_long[n] = (struct option){"help", no_argument, NULL, OPT_HELP};
    g_long[n + 1] = (struct option){"version", no_argument, NULL, OPT_VERSION};
    g_short[k++] = 'h';
    g_short[k] = 0;
}

void vr_cli_usage(void)
{
    printf("Usage: %s %s\n%s\n\nOptions:\n", g_cli->prog, g_cli->synopsis, g_cli->about);
    for (const struct vr_opt *o = g_cli->opts; o->name; o++) {
        char left[64];
        if (o->key > 0 && o->key < 128)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->key, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        printf("  %-28s %s\n", left, o->help);
    }
    printf("  %-28s %s\n", "-h, --help", "show this help and exit");
    printf("  %-28s %s\n", "    --version", "show the version and exit");
    printf("\nSee %s(1).\n", g_cli->prog);
}

int vr_cli_next(int *optind_out, const char **arg)
{
    opterr = 0;
    for (;;) {
        int c = getopt_long(g_argc, g_argv, g_short, g_long, NULL);
        *optind_out = optind;
        *arg = optarg;
        if (c == -1) return -1;
        if (c == OPT_HELP) {
            vr_cli_usage();
            exit(0);
        }
        if (c == OPT_VERSION) {
            printf("%s %s\n", g_cli->prog, VR_VERSION);
            exit(0);
        }
        if (c == '?' || c == ':') {
            if (optopt && optopt < 128 && strchr(g_short, optopt))
                vr_die_usage("option '-%c' needs an argument", optopt);
            else if (optopt && optopt < 128)
                vr_die_usage("unknown option '-%c'", optopt);
            else
                vr_die_usage("unknown option or missing argument: '%s'", g_argv[optind - 1]);
        }
        return c;
    }
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

int64_t vr_cli_int(const char *flag, const char *arg, int64_t min, int64_t max)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end) vr_die_usage("--%s: '%s' is not an integer", flag, arg);
    if (v < min || v > max)
        vr_die_usage("--%s: %lld is out of range [%lld, %lld]", flag, v, (long long)min,
                     (long long)max);
    return v;
}

uint64_t vr_cli_u64(const char *flag, const char *arg)
{
    char *end;
    errno = 0;
    if (arg[0] == '-') vr_die_usage("--%s: '%s' is negative", flag, arg);
    unsigned long long v = strtoull(arg, &end, 0);
    if (errno || end == arg || *end) vr_die_usage("--%s: '%s' is not an integer", flag, arg);
    return v;
}

double vr_cli_double(const char *flag, const char *arg, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v))
        vr_die_usage("--%s: '%s' is not a number", flag, arg);
    if (v < min || v > max) vr_die_usage("--%s: %g is out of range [%g, %g]", flag, v, min, max);
    return v;
}
