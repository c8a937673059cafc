/* cli.c: cmd/cli.c's option tables: each entry type into its destination,
 * ranges and their messages, choices, bad numbers, repeated flags,
 * callbacks, getopt's errors, and --help generated from the table. */
#include "../../cmd/cli.h"

#include <string.h>

#include "../tap.h"

static int flag, group, ngiven;
static int64_t budget;
static uint64_t seed;
static double eps;
static float temp;
static const char *model;
static int loss, parse;
static const char *given[4];

/* --tag T, repeatable: collects each */
static int tag_arg(const struct vr_opt *opt, const char *arg, struct vr_err *err)
{
    (void)opt;
    if (ngiven == 4) return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "--tag: at most 4");
    given[ngiven++] = arg;
    return 0;
}

/* --mark: a switch through a callback (arg is NULL) */
static int mark_arg(const struct vr_opt *opt, const char *arg, struct vr_err *err)
{
    (void)err;
    *(int *)opt->dst = arg ? -1 : 7;
    return 0;
}
static int mark;

static const struct vr_opt opts[] = {
    VR_OPT_FLAG("all", 'a', &flag, "a switch"),
    VR_OPT_INT("group", 'G', "N", &group, 1, 1024, "completions per prompt (default 8)"),
    VR_OPT_I64("max-batch-tokens", 0, "N", &budget, 1, INT64_MAX / 2, "tokens"),
    VR_OPT_U64("seed", 0, "N", &seed, "seed"),
    VR_OPT_DOUBLE("epsilon", 0, "E", &eps, 0, 1, "clip"),
    VR_OPT_FLOAT("temperature", 0, "T", &temp, 1e-6, 100, "sampling temperature"),
    VR_OPT_STRING("model", 'm', "DIR", &model, "the checkpoint"),
    VR_OPT_CHOICE("loss", 0, "NAME", &loss, "grpo|bnpo|dapo|dr_grpo", "the loss"),
    VR_OPT_CHOICE("parse", 0, "MODE", &parse, "r1|baseline", "how to parse"),
    VR_OPT_CALL("tag", 't', "T", tag_arg, NULL, "repeatable"),
    VR_OPT_CALL("mark", 0, NULL, mark_arg, &mark, "a switch through a callback"),
    VR_OPT_END,
};

static const struct vr_cli cli = {"vr-test", "[OPTION]... [FILE]...", "Test the option table.", opts};

static void reset(void)
{
    flag = 0, group = 8, budget = 40960, seed = 0, eps = 0.2, temp = 1.0f, model = NULL;
    loss = 0, parse = 0, ngiven = 0, mark = 0;
}

/* Parse a NULL-terminated list (copied: getopt permutes it); returns
 * vr_cli_parse_args' result, *ind and the copy in argv. */
static int run(char **argv, struct vr_err *err, int *ind, const char *const *args)
{
    int argc = 0;
    argv[argc++] = "vr-test";
    while (args[argc - 1]) {
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    argv[argc] = NULL;
    reset();
    memset(err, 0, sizeof *err);
    FILE *devnull = fopen("/dev/null", "w");
    int rc = vr_cli_parse_args(&cli, argc, argv, devnull, ind, err);
    fclose(devnull);
    return rc;
}

static int argc_of(char **argv)
{
    int n = 0;
    while (argv[n]) n++;
    return n;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A usage error with exactly msg. */
static void refused(const char *const *args, const char *msg, const char *what)
{
    char *argv[32];
    struct vr_err err;
    int ind;
    int rc = run(argv, &err, &ind, args);
    ok(rc == -1 && err.kind == VR_ERR_USAGE && strcmp(err.msg, msg) == 0, "%s: %s", what, msg);
    if (rc != -1 || strcmp(err.msg, msg)) diag("rc %d, kind %d, msg '%s'", rc, err.kind, err.msg);
}

static void test_values(void)
{
    char *argv[32];
    struct vr_err err;
    int ind;
    int rc = run(argv, &err, &ind,
                 ARGS("-a", "in.jsonl", "-G", "16", "--max-batch-tokens=123456789012", "--seed", "0x10",
                      "--epsilon", "0.25", "--temperature", "0.7", "-m", "ckpt", "--loss", "dapo",
                      "--parse", "baseline", "--mark", "out.jsonl"));
    ok(rc == 0, "every entry type parses");
    ok(flag == 1 && group == 16 && budget == 123456789012LL && seed == 16 && eps == 0.25, "flag, int, i64, u64 (hex), double");
    ok(temp == 0.7f && model && strcmp(model, "ckpt") == 0, "float (rounded from the double), string");
    ok(loss == 2 && parse == 1 && mark == 7, "choices write the index; a switch callback gets NULL");
    ok(ind == argc_of(argv) - 2 && strcmp(argv[ind], "in.jsonl") == 0 && strcmp(argv[ind + 1], "out.jsonl") == 0,
       "operands are permuted after the options, in order");

    rc = run(argv, &err, &ind, ARGS("-aG4", "--", "-G", "x"));
    ok(rc == 0 && flag == 1 && group == 4 && strcmp(argv[ind], "-G") == 0, "bundled short options; -- ends options");

    rc = run(argv, &err, &ind, ARGS("-G", "3", "--group", "5", "-t", "a", "--tag=b", "-tc"));
    ok(rc == 0 && group == 5, "a repeated flag: the last one wins");
    ok(ngiven == 3 && !strcmp(given[0], "a") && !strcmp(given[1], "b") && !strcmp(given[2], "c"),
       "a repeated callback sees each value in order");

    rc = run(argv, &err, &ind, ARGS("--gro", "9", "--temp", "2"));
    ok(rc == 0 && group == 9 && temp == 2.0f, "unambiguous prefixes of long names (getopt_long)");

    rc = run(argv, &err, &ind, ARGS("-G", "1024", "--epsilon", "1", "--temperature", "1e-6", "--loss", "grpo"));
    ok(rc == 0 && group == 1024 && eps == 1 && loss == 0, "the ends of ranges are inside");

    rc = run(argv, &err, &ind, ARGS("x"));
    ok(rc == 0 && group == 8 && loss == 0 && !model && ind == 1, "no flag leaves the defaults");
}

static void test_errors(void)
{
    refused(ARGS("-G", "0"), "--group: 0 is out of range [1, 1024]", "int below range");
    refused(ARGS("--group", "1025"), "--group: 1025 is out of range [1, 1024]", "int above range");
    refused(ARGS("-G", "x"), "--group: 'x' is not an integer", "not a number");
    refused(ARGS("-G", "12abc"), "--group: '12abc' is not an integer", "trailing characters");
    refused(ARGS("-G", ""), "--group: '' is not an integer", "empty");
    refused(ARGS("-G", "1.5"), "--group: '1.5' is not an integer", "a fraction for an int");
    refused(ARGS("--max-batch-tokens", "99999999999999999999"), "--max-batch-tokens: '99999999999999999999' is not an integer",
            "int64 overflow");
    refused(ARGS("--max-batch-tokens", "0"), "--max-batch-tokens: 0 is out of range [1, 4611686018427387903]", "i64 range");
    refused(ARGS("--seed", "-1"), "--seed: '-1' is negative", "negative u64");
    refused(ARGS("--seed", "1x"), "--seed: '1x' is not an integer", "bad u64");
    refused(ARGS("--epsilon", "nan"), "--epsilon: 'nan' is not a number", "nan");
    refused(ARGS("--epsilon", "inf"), "--epsilon: 'inf' is not a number", "inf");
    refused(ARGS("--epsilon", "1e999"), "--epsilon: '1e999' is not a number", "overflow");
    refused(ARGS("--epsilon", "1.5"), "--epsilon: 1.5 is out of range [0, 1]", "double range");
    refused(ARGS("--temperature", "0"), "--temperature: 0 is out of range [1e-06, 100]", "float range");
    refused(ARGS("--loss", "ppo"), "--loss: 'ppo' is not grpo, bnpo, dapo or dr_grpo", "unknown choice of four");
    refused(ARGS("--loss", "grp"), "--loss: 'grp' is not grpo, bnpo, dapo or dr_grpo", "a prefix is no choice");
    refused(ARGS("--parse", "R1"), "--parse: 'R1' is not r1 or baseline", "unknown choice of two");
    refused(ARGS("-t", "1", "-t", "2", "-t", "3", "-t", "4", "-t", "5"), "--tag: at most 4",
            "a callback's error is a usage error");
    refused(ARGS("--no-such-flag"), "unknown option '--no-such-flag'", "unknown long option");
    refused(ARGS("--no-such=3"), "unknown option '--no-such=3'", "unknown long option with a value");
    refused(ARGS("-z"), "unknown option '-z'", "unknown short option");
    refused(ARGS("-G"), "option '-G' needs an argument", "short option without its argument");
    refused(ARGS("-aG"), "option '-G' needs an argument", "bundled short option without its argument");
    refused(ARGS("--group"), "option '--group' needs an argument", "long option (with a letter) without its argument");
    refused(ARGS("--seed"), "option '--seed' needs an argument", "long-only option without its argument");
    refused(ARGS("--all=1"), "option '--all' takes no argument", "a switch given a value");
    refused(ARGS("--mark=1"), "option '--mark' takes no argument", "a long-only switch given a value");
    refused(ARGS("--help=1"), "option '--help' takes no argument", "--help given a value");
    refused(ARGS("--t", "1"), "ambiguous option '--t'", "an ambiguous prefix (--tag, --temperature)");
}

static const char want_help[] =
    "Usage: vr-test [OPTION]... [FILE]...\n"
    "Test the option table.\n"
    "\n"
    "Options:\n"
    "  -a, --all                    a switch\n"
    "  -G, --group N                completions per prompt (default 8)\n"
    "      --max-batch-tokens N     tokens\n"
    "      --seed N                 seed\n"
    "      --epsilon E              clip\n"
    "      --temperature T          sampling temperature\n"
    "  -m, --model DIR              the checkpoint\n"
    "      --loss NAME              the loss\n"
    "      --parse MODE             how to parse\n"
    "  -t, --tag T                  repeatable\n"
    "      --mark                   a switch through a callback\n"
    "  -h, --help                   show this help and exit\n"
    "      --version                show the version and exit\n"
    "\n"
    "See vr-test(1).\n";

static void test_help(void)
{
    char *buf = NULL, *argv[4] = {"vr-test", "-a", "--help", NULL};
    size_t len = 0;
    struct vr_err err;
    int ind;
    FILE *f = open_memstream(&buf, &len);
    reset();
    int rc = vr_cli_parse_args(&cli, 3, argv, f, &ind, &err);
    fclose(f);
    ok(rc == 1, "--help: parse says it was answered");
    is_str(buf, want_help, "--help is generated from the table, in its order");
    free(buf);

    char *argv2[3] = {"vr-test", "--version", NULL};
    f = open_memstream(&buf, &len);
    rc = vr_cli_parse_args(&cli, 2, argv2, f, &ind, &err);
    fclose(f);
    ok(rc == 1 && strcmp(buf, "vr-test " VR_VERSION "\n") == 0, "--version: 'vr-test %s'", VR_VERSION);
    free(buf);

    f = open_memstream(&buf, &len);
    vr_cli_help(&cli, f);
    fclose(f);
    is_str(buf, want_help, "vr_cli_help gives the same text");
    free(buf);
}

static void test_get(void)
{
    struct vr_err err;
    int64_t i = 0;
    double d = 0;
    uint64_t u = 0;
    ok(vr_cli_get_int("splits", "42", 0, 100, &i, &err) == 0 && i == 42, "vr_cli_get_int");
    ok(vr_cli_get_int("splits", "-1", 0, 100, &i, &err) == -1 && i == 42 &&
           strcmp(err.msg, "--splits: -1 is out of range [0, 100]") == 0 && err.kind == VR_ERR_USAGE,
       "vr_cli_get_int: out of range leaves the value");
    ok(vr_cli_get_double("p", "0.5", 0, 0.99, &d, &err) == 0 && d == 0.5, "vr_cli_get_double");
    ok(vr_cli_get_u64("seed", "18446744073709551615", &u, &err) == 0 && u == UINT64_MAX, "vr_cli_get_u64: 2^64-1");
}

int main(void)
{
    test_values();
    test_errors();
    test_help();
    test_get();
    return done_testing();
}
