/* fuzz.h: what the libFuzzer entry points in tests/fuzz/ share. Parsers that
 * take a path get the input as a file without touching the disk where they
 * can (a memfd, named /proc/self/fd/N), else in a fresh folder under $TMPDIR
 * that is removed before the entry point returns; a crash leaves it behind,
 * nothing else does. Built with clang + libFuzzer by `make fuzz` and with the
 * normal compiler for tests/fuzz/replay.c (t0990), so plain C, no -Werror
 * escapes. */
#ifndef VR_FUZZ_H
#define VR_FUZZ_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Write all of data[0..n) to fd; 0 or -1. */
static inline int fuzz_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* The input as a regular file in memory: returns its fd (close it when done)
 * and its name in path (>= 32 bytes), or -1. */
static inline int fuzz_memfd(const void *data, size_t n, char *path)
{
    int fd = memfd_create("vr-fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (fuzz_write_all(fd, data, n)) {
        close(fd);
        return -1;
    }
    snprintf(path, 32, "/proc/self/fd/%d", fd);
    return fd;
}

/* A fresh folder for one input (dir >= 64 bytes); 0 or -1. */
static inline int fuzz_dir_make(char *dir)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, 64, "%s/vr-fuzz.XXXXXX", t && *t && strlen(t) < 40 ? t : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

/* Write data[0..n) to dir/name; 0 or -1. */
static inline int fuzz_dir_put(const char *dir, const char *name, const void *data, size_t n)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    int rc = fuzz_write_all(fd, data, n);
    close(fd);
    return rc;
}

/* Remove dir/names[0..n) and dir. */
static inline void fuzz_dir_remove(const char *dir, const char *const *names, int n)
{
    char p[128];
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

#endif
