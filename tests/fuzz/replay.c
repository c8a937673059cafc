/* replay.c: a main for the libFuzzer entry points in tests/fuzz/ without
 * libFuzzer, so the normal compiler builds them (the Makefile links one
 * build/fuzz-replay/<harness> per entry point) and t0990 runs each over its
 * seed corpus in `make test`, under ASan/UBSan in `make check`: a corpus
 * file that crashes fails the test without clang.
 *   replay [-v] FILE|DIR...
 * A folder stands for its files (not subfolders), in name order. Each input
 * is read whole into a buffer of its exact size and handed to
 * LLVMFuzzerTestOneInput once; -v names it on stderr first, so a crash's
 * report follows its name. Prints "N inputs"; exit 0, 2 on a usage or read
 * error. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int verbose;

static int one(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0, r;
    uint8_t *b = malloc(cap), *nb;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0)
        if ((n += r) == cap) {
            nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    int bad = !b || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        free(b);
        return -1;
    }
    if (verbose) fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    /* an exact-size copy, so ASan sees a read past the input's end */
    uint8_t *in = malloc(n ? n : 1);
    memcpy(in, b, n);
    free(b);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
    int files = 0, i = 1;
    if (i < argc && strcmp(argv[i], "-v") == 0) verbose = 1, i++;
    if (i == argc) {
        fprintf(stderr, "usage: %s [-v] FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (one(argv[i])) return 2;
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) return 2;
        char **names = NULL;
        size_t n = 0;
        for (struct dirent *e; (e = readdir(d));) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            if (e->d_name[0] == '.' || stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
            names = realloc(names, (n + 1) * sizeof *names);
            names[n++] = strdup(p);
        }
        closedir(d);
        qsort(names, n, sizeof *names, cmp);
        int rc = 0;
        for (size_t k = 0; k < n; k++) {
            if (!rc && one(names[k])) rc = 2;
            free(names[k]);
        }
        free(names);
        if (rc) return rc;
        files += (int)n;
    }
    printf("%d inputs\n", files);
    return 0;
}
