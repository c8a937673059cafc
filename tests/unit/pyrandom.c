/* pyrandom.c: lib/pyrandom.c against CPython's random module (the fixture of
 * tests/golden/make_pyrandom_golden.py: seed, getrandbits, randrange, shuffle
 * for 64-bit seeds and lists up to 70,000), MT19937's published known answers,
 * and vr_take_apply's pyrandom rule on JSON items. */
#include "dataset.h"
#include "pyrandom.h"

#include "../tap.h"
#include "golden.h"

#define P61 ((1ull << 61) - 1)

/* make_pyrandom_golden.py's HASH: h = (h * 1000003 + p + 1) mod (2^61 - 1) */
static uint64_t phash(const uint64_t *p, size_t n)
{
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) h = (uint64_t)(((unsigned __int128)h * 1000003u + p[i] + 1) % P61);
    return h;
}

/* The numbers of a fixture line after its keyword, into a growing array. */
static size_t numbers(const char *s, uint64_t **v, size_t *cap)
{
    size_t n = 0;
    for (;;) {
        char *end;
        while (*s == ' ') s++;
        if (*s < '0' || *s > '9') break;
        uint64_t x = strtoull(s, &end, 10);
        if (n == *cap) {
            *cap = *cap ? 2 * *cap : 256;
            *v = realloc(*v, *cap * sizeof **v);
        }
        (*v)[n++] = x;
        s = end;
    }
    return n;
}

/* One fixture line: its draws from a freshly seeded generator equal Python's. */
static int check_line(const char *kind, const uint64_t *a, size_t na, char *why, size_t whylen)
{
    struct vr_pyrandom r;
    vr_pyrandom_seed(&r, a[0]);
    if (strcmp(kind, "u32") == 0) {
        for (size_t i = 1; i < na; i++) {
            uint64_t g = vr_pyrandom_u32(&r);
            if (g != a[i]) return snprintf(why, whylen, "draw %zu: %llu", i - 1, (unsigned long long)g), 0;
        }
        return na > 1;
    }
    if (strcmp(kind, "bits") == 0 || strcmp(kind, "below") == 0) {
        int bits = kind[1] == 'i';
        for (size_t i = 2; i < na; i++) {
            uint64_t g = bits ? vr_pyrandom_bits(&r, (int)a[1]) : vr_pyrandom_below(&r, a[1]);
            if (g != a[i]) return snprintf(why, whylen, "draw %zu: %llu", i - 2, (unsigned long long)g), 0;
        }
        return na > 2;
    }
    int sum = strcmp(kind, "permsum") == 0;
    if (sum || strcmp(kind, "perm") == 0) {
        size_t n = (size_t)a[1];
        uint64_t *x = malloc((n ? n : 1) * sizeof *x);
        for (size_t i = 0; i < n; i++) x[i] = i;
        vr_pyrandom_shuffle(&r, x, n, sizeof *x);
        int good;
        if (!sum) {
            good = na == n + 2 && memcmp(x, a + 2, n * sizeof *x) == 0;
        } else {
            uint64_t h = phash(x, n);
            good = na == 3 + 100 && n >= 100 && h == a[2] && memcmp(x, a + 3, 50 * sizeof *x) == 0 &&
                   memcmp(x + n - 50, a + 53, 50 * sizeof *x) == 0;
            if (!good) snprintf(why, whylen, "hash %llu", (unsigned long long)h);
        }
        if (!good && !sum)
            for (size_t i = 0; i < n && i + 2 < na; i++)
                if (x[i] != a[i + 2]) {
                    snprintf(why, whylen, "entry %zu: %llu", i, (unsigned long long)x[i]);
                    break;
                }
        free(x);
        return good;
    }
    return snprintf(why, whylen, "unknown line"), 0;
}

static void test_fixture(void)
{
    FILE *f = fopen(golden_path("pyrandom/expected.txt"), "r");
    if (!f) {
        printf("Bail out! %s: cannot open (run from the repository root or set VR_SRC)\n",
               golden_path("pyrandom/expected.txt"));
        exit(1);
    }
    char *line = NULL;
    size_t len = 0, cap = 0;
    uint64_t *a = NULL;
    int lines = 0, perms = 0;
    while (getline(&line, &len, f) > 0) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char kind[16];
        int at = 0;
        if (sscanf(line, "%15s%n", kind, &at) != 1) continue;
        size_t na = numbers(line + at, &a, &cap);
        char why[128] = "";
        int good = na >= 2 && check_line(kind, a, na, why, sizeof why);
        if (na >= 2)
            ok(good, "%s seed %llu %llu", kind, (unsigned long long)a[0], (unsigned long long)a[1]);
        else
            ok(0, "fixture line parses: %.40s", line);
        if (!good && why[0]) diag("%s", why);
        lines++;
        perms += kind[0] == 'p';
    }
    free(line);
    free(a);
    fclose(f);
    ok(lines > 150 && perms >= 60, "fixture has %d cases, %d shuffles", lines, perms);
}

static void test_known_answers(void)
{
    /* mt19937ar.c's main(): init_genrand(5489) is C++'s default std::mt19937,
     * whose 10000th output the C++ standard fixes at 4123659995 */
    static const uint32_t g5489[5] = {3499211612u, 581869302u, 3890346734u, 3586334585u, 545404204u};
    struct vr_pyrandom r;
    vr_pyrandom_init_genrand(&r, 5489);
    int good = 1;
    for (int i = 0; i < 5; i++) good &= vr_pyrandom_u32(&r) == g5489[i];
    ok(good, "init_genrand(5489): the reference first outputs");
    uint32_t x = 0;
    for (int i = 5; i < 10000; i++) x = vr_pyrandom_u32(&r);
    is_int(x, 4123659995u, "init_genrand(5489): 10000th output is std::mt19937's");
    /* mt19937ar.out: init_by_array({0x123, 0x234, 0x345, 0x456}) */
    static const uint32_t key[4] = {0x123, 0x234, 0x345, 0x456};
    static const uint32_t gar[5] = {1067595299u, 955945823u, 477289528u, 4107218783u, 4228976476u};
    vr_pyrandom_init_by_array(&r, key, 4);
    good = 1;
    for (int i = 0; i < 5; i++) good &= vr_pyrandom_u32(&r) == gar[i];
    ok(good, "init_by_array(0x123, 0x234, 0x345, 0x456): mt19937ar.out");
    vr_pyrandom_seed(&r, 0);
    ok(vr_pyrandom_bits(&r, 0) == 0 && vr_pyrandom_u32(&r) == 3626764237u,
       "getrandbits(0) is 0 and draws nothing");
}

/* The shuffle swaps whole elements whatever their size. */
static void test_sizes(void)
{
    enum { N = 300 };
    uint64_t w[N];
    uint16_t h[N];
    struct { char c[3]; } t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (uint64_t)i;
        h[i] = (uint16_t)i;
        t[i].c[0] = (char)i, t[i].c[1] = (char)(i >> 8), t[i].c[2] = (char)~i;
    }
    struct vr_pyrandom r;
    vr_pyrandom_seed(&r, 9), vr_pyrandom_shuffle(&r, w, N, sizeof *w);
    vr_pyrandom_seed(&r, 9), vr_pyrandom_shuffle(&r, h, N, sizeof *h);
    vr_pyrandom_seed(&r, 9), vr_pyrandom_shuffle(&r, t, N, sizeof *t);
    int same = 1;
    for (int i = 0; i < N; i++) {
        int ti = (unsigned char)t[i].c[0] | (unsigned char)t[i].c[1] << 8;
        same &= h[i] == w[i] && (uint64_t)ti == w[i] && t[i].c[2] == (char)~ti;
    }
    ok(same, "2-, 3- and 8-byte elements get the same permutation");
    vr_pyrandom_shuffle(&r, w, 0, sizeof *w);
    vr_pyrandom_shuffle(&r, NULL, 0, sizeof *w);
    ok(1, "an empty list is left alone");
}

/* vr_take_apply(pyrandom): the first N of Python's shuffle, in shuffled order. */
static void test_take(void)
{
    /* perm 42 50 of the fixture, first 7 */
    static const int want[7] = {25, 23, 19, 11, 4, 45, 26};
    struct vr_take t;
    struct vr_err err;
    ok(vr_take_parse("pyrandom:7", &t, &err) == 0 && t.how == VR_TAKE_PYRANDOM && t.n == 7 &&
           !t.percent,
       "parse pyrandom:7");
    json_t *items[50];
    for (int i = 0; i < 50; i++) items[i] = json_integer(i);
    int64_t k = vr_take_apply(items, 50, &t, 42, 12345);
    int good = k == 7;
    for (int i = 0; i < 7 && good; i++) good = json_integer_value(items[i]) == want[i];
    ok(good, "pyrandom:7 seed 42 of 50 takes Python's 7, whatever the stream");
    for (int i = 0; i < k; i++) json_decref(items[i]);

    ok(vr_take_parse("pyrandom:10%", &t, &err) == 0 && t.percent, "parse pyrandom:10%%");
    for (int i = 0; i < 50; i++) items[i] = json_integer(i);
    k = vr_take_apply(items, 50, &t, 42, 0);
    good = k == 5;
    for (int i = 0; i < 5 && good; i++) good = json_integer_value(items[i]) == want[i];
    ok(good, "pyrandom:10%% of 50 is ceil(5) = the first 5");
    for (int i = 0; i < k; i++) json_decref(items[i]);

    ok(vr_take_parse("pyrandom:1000", &t, &err) == 0, "parse pyrandom:1000");
    for (int i = 0; i < 50; i++) items[i] = json_integer(i);
    k = vr_take_apply(items, 50, &t, 42, 0);
    good = k == 50;
    for (int i = 0; i < 7 && good; i++) good = json_integer_value(items[i]) == want[i];
    ok(good, "more than the list: the whole shuffled list");
    for (int i = 0; i < k; i++) json_decref(items[i]);

    static const char *const bad[] = {"pyrandom:-1", "pyrandom:x", "pyrandom:", "pyrandom:1.5",
                                      "pyrandom:101%", "pyrandom:1e300", "pyrandom:5x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = vr_take_parse(bad[i], &t, &err);
        ok(rc == -1 && err.kind == VR_ERR_USAGE && strstr(err.msg, bad[i]), "'%s' refused: %s",
           bad[i], err.msg);
    }
    ok(vr_take_parse("pyrandomx:3", &t, &err) == -1 && strstr(err.msg, "pyrandom:N"),
       "unknown rule names pyrandom:N: %s", err.msg);
}

int main(void)
{
    test_fixture();
    test_known_answers();
    test_sizes();
    test_take();
    return done_testing();
}
