/* files.h: what unit tests that write folders share: a temporary folder made
 * at the start and removed (with everything in it) at the end, and small
 * readers of the files in it. Include after tap.h; needs lib/fs.h. */
#ifndef VR_TEST_FILES_H
#define VR_TEST_FILES_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"

static char *pj(const char *a, const char *b) { return vr_path_join(a, b); }

/* Make $TMPDIR/vr-NAME-XXXXXX (or under /tmp) into root[n], or bail out. */
__attribute__((unused)) static void tmpdir_make(char *root, size_t n, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, n, "%s/vr-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(root)) {
        printf("Bail out! cannot create a temporary folder under %s\n", root);
        exit(1);
    }
}

static int tmpdir_rm(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

/* Remove root and everything below it. */
__attribute__((unused)) static void tmpdir_remove(const char *root) { nftw(root, tmpdir_rm, 16, FTW_DEPTH | FTW_PHYS); }

/* dir/name whole (caller frees; *len its size when len is not NULL), or NULL. */
__attribute__((unused)) static char *slurp(const char *dir, const char *name, size_t *len)
{
    char *p = pj(dir, name), *b = NULL;
    size_t n = 0;
    struct vr_err e;
    if (vr_file_read(p, &b, &n, &e)) b = NULL;
    free(p);
    if (len) *len = n;
    return b;
}

/* Whether dir/name exists (a dangling link counts). */
__attribute__((unused)) static int exists(const char *dir, const char *name)
{
    char *p = pj(dir, name);
    struct stat sb;
    int r = lstat(p, &sb) == 0;
    free(p);
    return r;
}

/* Whether d1/name and d2/name both exist with the same bytes. */
__attribute__((unused)) static int same_file(const char *d1, const char *d2, const char *name)
{
    size_t n1, n2;
    char *a = slurp(d1, name, &n1), *b = slurp(d2, name, &n2);
    int r = a && b && n1 == n2 && memcmp(a, b, n1) == 0;
    free(a);
    free(b);
    return r;
}

#endif
