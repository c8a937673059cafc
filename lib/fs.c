/* fs.c: atomic writes, whole-file reads, lexical paths (see fs.h). */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int vr_tmp_create(const char *path, char **tmp, struct vr_err *err)
{
    static _Atomic unsigned long counter;
    *tmp = NULL;
    if (vr_test_io("create", path)) return vr_err_sys(err, path, "cannot create temporary file");
    size_t n = strlen(path) + 48;
    char *t = vr_xmalloc(n);
    for (int tries = 0; tries < 100; tries++) {
        /* unpredictable enough that a name cannot be planted ahead: the
         * clock, the pid, a counter; O_EXCL | O_NOFOLLOW refuse whatever is
         * there anyway (a file, or a symlink to one elsewhere) */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t x = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)counter++ << 40) ^
                     (uint64_t)(uintptr_t)t;
        x ^= (uint64_t)getpid() << 16; /* splitmix64's finaliser */
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        x ^= x >> 31;
        snprintf(t, n, "%s.tmp.%ld.%08llx", path, (long)getpid(), (unsigned long long)(x & 0xffffffffu));
        int fd = open(t, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0) {
            *tmp = t;
            return fd;
        }
        if (errno != EEXIST) break;
    }
    vr_err_sys(err, path, "cannot create temporary file");
    free(t);
    *tmp = NULL;
    return -1;
}

int vr_atomic_open(struct vr_atomic *a, const char *path, struct vr_err *err)
{
    a->path = vr_xstrdup(path);
    a->fd = vr_tmp_create(path, &a->tmp, err);
    a->nosync = 0;
    if (a->fd < 0) {
        free(a->path);
        a->path = NULL;
        return -1;
    }
    return 0;
}

int vr_atomic_write(struct vr_atomic *a, const void *buf, size_t len, struct vr_err *err)
{
    const char *p = buf;
    if (vr_test_io("write", a->path)) return vr_err_sys(err, a->path, "write failed");
    while (len) {
        ssize_t w = write(a->fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return vr_err_sys(err, a->path, "write failed");
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void atomic_free(struct vr_atomic *a)
{
    free(a->path);
    free(a->tmp);
    a->path = a->tmp = NULL;
    a->fd = -1;
}

void vr_atomic_abort(struct vr_atomic *a)
{
    if (!a->tmp) return;
    if (a->fd >= 0) close(a->fd);
    unlink(a->tmp);
    atomic_free(a);
}

int vr_atomic_commit(struct vr_atomic *a, struct vr_err *err)
{
    if (!a->nosync && (vr_test_io("fsync", a->path) || fsync(a->fd) != 0)) {
        vr_err_sys(err, a->path, "fsync failed");
        vr_atomic_abort(a);
        return -1;
    }
    int rc = close(a->fd);
    a->fd = -1;
    if (rc != 0) {
        vr_err_sys(err, a->path, "close failed");
        vr_atomic_abort(a);
        return -1;
    }
    if (vr_test_io("rename", a->path) || rename(a->tmp, a->path) != 0) {
        vr_err_sys(err, a->path, "rename failed");
        vr_atomic_abort(a);
        return -1;
    }
    if (a->nosync) {
        atomic_free(a);
        return 0;
    }
    char *dir = vr_path_dir(a->path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (dfd >= 0) {
        /* a directory fsync that fails (some filesystems refuse it) does not
         * undo the rename; the data itself is already on disk */
        (void)fsync(dfd);
        close(dfd);
    }
    atomic_free(a);
    return 0;
}

int vr_file_write_atomic(const char *path, const void *buf, size_t len, struct vr_err *err)
{
    struct vr_atomic a;
    if (vr_atomic_open(&a, path, err)) return -1;
    if (vr_atomic_write(&a, buf, len, err)) {
        vr_atomic_abort(&a);
        return -1;
    }
    return vr_atomic_commit(&a, err);
}

int vr_file_read(const char *path, char **buf, size_t *len, struct vr_err *err)
{
    int stdin_ = strcmp(path, "-") == 0;
    FILE *f = stdin_ ? stdin : fopen(path, "rbe");
    if (!f) return vr_err_sys(err, path, "cannot open");
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    if (!b) {
        if (!stdin_) fclose(f);
        return vr_err_set(err, VR_ERR_SYS, path, 0, "out of memory");
    }
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                if (!stdin_) fclose(f);
                return vr_err_set(err, VR_ERR_SYS, path, 0, "out of memory");
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    if (!stdin_) fclose(f);
    if (bad) {
        free(b);
        return vr_err_sys(err, path, "read failed");
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

FILE *vr_file_open_regular(const char *path, int64_t max_bytes, struct vr_err *err)
{
    /* O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        vr_err_sys(err, path, "cannot open");
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        vr_err_sys(err, path, "cannot stat");
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        vr_err_set(err, VR_ERR_INPUT, path, 0, "not a regular file (%s)",
                   S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                   : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "a special file");
        close(fd);
        return NULL;
    }
    if (max_bytes > 0 && st.st_size > max_bytes) {
        vr_err_set(err, VR_ERR_INPUT, path, 0, "file of %lld bytes is larger than the %lld allowed",
                   (long long)st.st_size, (long long)max_bytes);
        close(fd);
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        vr_err_sys(err, path, "cannot open");
        close(fd);
    }
    return f;
}

int vr_file_read_regular(const char *path, int64_t max_bytes, char **buf, size_t *len,
                         struct vr_err *err)
{
    FILE *f = vr_file_open_regular(path, max_bytes, err);
    if (!f) return -1;
    struct stat st;
    size_t size = fstat(fileno(f), &st) == 0 ? (size_t)st.st_size : 0;
    char *b = malloc(size + 1);
    if (!b) {
        fclose(f);
        return vr_err_set(err, VR_ERR_SYS, path, 0, "out of memory for %zu bytes", size);
    }
    /* read what the file held when opened: a file still growing is read to that size */
    size_t n = fread(b, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return vr_err_sys(err, path, "read failed");
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

/* Lexical normalisation in place: collapse "//", drop ".", resolve ".." against
 * a preceding real component. */
static void path_norm(char *p)
{
    int abs_ = p[0] == '/';
    char *out = p, *s = p;
    char **starts = vr_xmalloc((strlen(p) / 2 + 2) * sizeof *starts);
    int depth = 0; /* components that a later ".." may remove */
    if (abs_) out++, s++;
    while (*s) {
        while (*s == '/') s++;
        if (!*s) break;
        char *e = s;
        while (*e && *e != '/') e++;
        size_t len = (size_t)(e - s);
        int dot = len == 1 && s[0] == '.', dotdot = len == 2 && s[0] == '.' && s[1] == '.';
        if (dot || (dotdot && depth == 0 && abs_)) {
            /* "." and "/.." add nothing */
        } else if (dotdot && depth > 0) {
            out = starts[--depth];
        } else {
            char *start = out;
            if (out > p + abs_) *out++ = '/';
            memmove(out, s, len);
            out += len;
            if (!dotdot) starts[depth++] = start;
        }
        s = e;
    }
    if (out == p) *out++ = '.';
    *out = 0;
    free(starts);
}

char *vr_path_join(const char *dir, const char *name)
{
    char *r;
    if (!dir || !*dir || name[0] == '/') {
        r = vr_xstrdup(name);
    } else {
        size_t a = strlen(dir), b = strlen(name);
        r = vr_xmalloc(a + b + 2);
        memcpy(r, dir, a);
        r[a] = '/';
        memcpy(r + a + 1, name, b + 1);
    }
    path_norm(r);
    return r;
}

char *vr_path_abs(const char *path)
{
    if (path[0] == '/') return vr_path_join(NULL, path);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return vr_path_join(NULL, path);
    return vr_path_join(cwd, path);
}

char *vr_path_dir(const char *path)
{
    const char *s = strrchr(path, '/');
    if (!s) return vr_xstrdup(".");
    if (s == path) return vr_xstrdup("/");
    size_t n = (size_t)(s - path);
    char *r = vr_xmalloc(n + 1);
    memcpy(r, path, n);
    r[n] = 0;
    return r;
}

int vr_mkdir_p(const char *dir, struct vr_err *err)
{
    char *p = vr_xstrdup(dir);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                vr_err_sys(err, p, "cannot create directory");
                free(p);
                return -1;
            }
            *s = c;
            if (!c) break;
        }
    }
    free(p);
    return 0;
}

/* The locks this process holds (vr_lock_take), by file: few, taken and
 * given back by the main thread. A child that fork copies this table holds
 * none of them (POSIX locks are not inherited): pid tells. */
static struct held_lock {
    dev_t dev;
    ino_t ino;
    int fd;
    pid_t pid;
} held[16];
static int nheld;

int vr_lock_held(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    for (int i = 0; i < nheld; i++)
        if (held[i].dev == st.st_dev && held[i].ino == st.st_ino && held[i].pid == getpid()) return 1;
    return 0;
}

void vr_lock_release(int fd)
{
    for (int i = 0; i < nheld; i++)
        if (held[i].fd == fd) held[i] = held[--nheld];
    close(fd);
}

int vr_lock_holder(const char *path, pid_t *pid, struct vr_err *err)
{
    *pid = 0;
    if (vr_lock_held(path)) { /* opening and closing it would drop it */
        *pid = getpid();
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : vr_err_sys(err, path, "cannot open");
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int rc = fcntl(fd, F_GETLK, &fl);
    int e = errno;
    close(fd); /* this process holds no lock on it: closing drops none */
    if (rc != 0) {
        errno = e;
        return vr_err_sys(err, path, "cannot test the lock");
    }
    if (fl.l_type != F_UNLCK) *pid = fl.l_pid > 0 ? fl.l_pid : -1;
    return 0;
}

int vr_lock_take(const char *path, pid_t *holder, struct vr_err *err)
{
    *holder = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return vr_err_sys(err, path, "cannot open");
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &fl) == 0) {
        struct stat st;
        if (nheld < (int)(sizeof held / sizeof *held) && fstat(fd, &st) == 0)
            held[nheld++] = (struct held_lock){st.st_dev, st.st_ino, fd, getpid()};
        return fd;
    }
    int e = errno;
    close(fd);
    if (e == EACCES || e == EAGAIN) {
        vr_lock_holder(path, holder, NULL);
        if (!*holder) *holder = -1;
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "locked by another process (pid %ld)", (long)*holder);
    }
    errno = e;
    return vr_err_sys(err, path, "cannot lock");
}

int vr_path_confined(const char *root, const char *path, struct vr_err *err)
{
    char *r = realpath(root, NULL);
    if (!r) return vr_err_sys(err, root, "cannot resolve the folder");
    char *p = realpath(path, NULL);
    if (!p) {
        int rc = vr_err_sys(err, path, "cannot resolve");
        free(r);
        return rc;
    }
    size_t n = strlen(r);
    int inside = strncmp(p, r, n) == 0 && (p[n] == '/' || (n == 1 && r[0] == '/'));
    int rc = 0;
    if (!inside) rc = vr_err_set(err, VR_ERR_INPUT, NULL, 0, "image %s is outside %s (it resolves to %s)", path, r, p);
    free(r);
    free(p);
    return rc;
}

static int rm_rf_depth(int dfd, const char *name, int depth)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT) return 0;
    if ((errno != EISDIR && errno != EPERM) || depth > 16) return -1;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) rc = rm_rf_depth(fd, e->d_name, depth + 1);
    int saved = errno;
    closedir(d);
    if (rc) {
        errno = saved;
        return -1;
    }
    return unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

/* held: the caller holds dir's writer lock (vr_tmp_sweep_held) */
static int tmp_sweep(const char *dir, int64_t min_age_s, int held_lock)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    time_t now = time(NULL);
    for (struct dirent *e; (e = readdir(d));) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t) continue;
        char *end;
        long pid = strtol(t + 5, &end, 10);
        if (pid <= 0 || (*end && *end != '.')) continue;
        if (held_lock) {
            if (pid == (long)getpid()) continue;
        } else if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) {
            continue; /* alive, or not ours to judge */
        }
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        if (!held_lock && now - st.st_mtime < min_age_s) continue;
        removed += unlinkat(dirfd(d), e->d_name, 0) == 0;
    }
    closedir(d);
    return removed;
}

int vr_tmp_sweep(const char *dir, int64_t min_age_s) { return tmp_sweep(dir, min_age_s, 0); }

int vr_tmp_sweep_held(const char *dir) { return tmp_sweep(dir, 0, 1); }

int vr_rm_rf_at(int dfd, const char *name)
{
    return rm_rf_depth(dfd, name, 0);
}

int vr_test_io(const char *what, const char *path)
{
    static int mode = -1; /* 0 off, 1 kill@K, 2 fail@K, 3 trace */
    static long at;
    static _Atomic long n;
    if (mode < 0) {
        const char *s = getenv("VR_TEST_IO");
        mode = 0;
        if (s && !strcmp(s, "trace")) mode = 3;
        else if (s && (!strncmp(s, "kill@", 5) || !strncmp(s, "fail@", 5))) {
            at = strtol(s + 5, NULL, 10);
            mode = at > 0 ? (s[0] == 'k' ? 1 : 2) : 0;
        }
    }
    if (!mode) return 0;
    long k = ++n;
    if (mode == 3) fprintf(stderr, "vr-test-io %ld %s %s\n", k, what, path);
    if (k != at) return 0;
    if (mode == 1) raise(SIGKILL);
    errno = ENOSPC;
    return -1;
}
