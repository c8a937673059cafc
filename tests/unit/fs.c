/* fs.c: lexical paths and atomic writes. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

#include "../tap.h"

static void join_is(const char *dir, const char *name, const char *want)
{
    char *p = vr_path_join(dir, name);
    is_str(p, want, "join('%s', '%s')", dir ? dir : "(null)", name);
    free(p);
}

int main(void)
{
    join_is("/data/coco", "train2014/a.jpg", "/data/coco/train2014/a.jpg");
    join_is("/data/coco/", "./a.jpg", "/data/coco/a.jpg");
    join_is("/data//coco", "../x/a.jpg", "/data/x/a.jpg");
    join_is("/data", "/abs/a.jpg", "/abs/a.jpg");
    join_is(NULL, "a/./b//c", "a/b/c");
    join_is("", "a", "a");
    join_is("a", "../../b", "../b");
    join_is("/", "../../b", "/b");
    join_is(".", ".", ".");
    join_is("a/b", "..", "a");
    char *d = vr_path_dir("x/y/z.json");
    is_str(d, "x/y", "dir of x/y/z.json");
    free(d);
    d = vr_path_dir("z.json");
    is_str(d, ".", "dir of z.json");
    free(d);
    char *a = vr_path_abs("q.jpg");
    ok(a[0] == '/' && strstr(a, "/q.jpg"), "abs path is absolute (%s)", a);
    free(a);

    char dir[] = "/tmp/vr-fs-XXXXXX";
    ok(mkdtemp(dir) != NULL, "temp dir");
    char path[256], sub[256];
    snprintf(path, sizeof path, "%s/f.txt", dir);
    struct vr_err err;
    ok(vr_file_write_atomic(path, "one\n", 4, &err) == 0, "atomic write");
    ok(vr_file_write_atomic(path, "two\n", 4, &err) == 0, "atomic overwrite");
    char *buf;
    size_t len;
    ok(vr_file_read(path, &buf, &len, &err) == 0 && len == 4 && strcmp(buf, "two\n") == 0,
       "read back the new content");
    free(buf);
    struct vr_atomic at;
    ok(vr_atomic_open(&at, path, &err) == 0, "open a second writer");
    ok(vr_atomic_write(&at, "three", 5, &err) == 0, "write to temp");
    vr_atomic_abort(&at);
    ok(vr_file_read(path, &buf, &len, &err) == 0 && strcmp(buf, "two\n") == 0,
       "aborted write leaves the old file");
    free(buf);
    /* two temporaries of one path: two new files, names not the bare pid */
    char *t1, *t2;
    int f1 = vr_tmp_create(path, &t1, &err), f2 = vr_tmp_create(path, &t2, &err);
    char bare[300];
    snprintf(bare, sizeof bare, "%s.tmp.%ld", path, (long)getpid());
    ok(f1 >= 0 && f2 >= 0 && strcmp(t1, t2) != 0 && strncmp(t1, bare, strlen(bare)) == 0 &&
           strlen(t1) > strlen(bare),
       "temporaries: distinct, PATH.tmp.PID.RANDOM (%s, %s)", t1, t2);
    /* a symlink planted at a temporary's name is refused, not written through */
    close(f1);
    unlink(t1);
    char target[300];
    snprintf(target, sizeof target, "%s/victim", dir);
    ok(symlink(target, t1) == 0, "plant a symlink");
    ok(open(t1, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644) < 0 && access(target, F_OK) != 0,
       "O_EXCL | O_NOFOLLOW does not follow it (the flags vr_tmp_create uses)");
    unlink(t1);
    close(f2);
    unlink(t2);
    free(t1);
    free(t2);
    struct vr_err e2;
    snprintf(sub, sizeof sub, "%s/fifo", dir);
    ok(mkfifo(sub, 0644) == 0 && vr_file_open_regular(sub, 0, &e2) == NULL && strstr(e2.msg, "a FIFO"),
       "a FIFO is not opened as a file: %s", e2.msg);
    ok(vr_file_open_regular(dir, 0, &e2) == NULL && strstr(e2.msg, "a directory"), "nor a directory");
    ok(vr_file_read_regular(path, 2, &buf, &len, &e2) != 0 && strstr(e2.msg, "larger than the 2"),
       "nor a file over the limit: %s", e2.msg);
    ok(vr_file_read_regular(path, 0, &buf, &len, &e2) == 0 && len == 4 && !strcmp(buf, "two\n"),
       "a regular file is read whole");
    free(buf);
    unlink(sub);
    snprintf(sub, sizeof sub, "%s/a/b/c", dir);
    ok(vr_mkdir_p(sub, &err) == 0 && access(sub, F_OK) == 0, "mkdir -p");
    snprintf(sub, sizeof sub, "%s/nodir/f.txt", dir);
    ok(vr_file_write_atomic(sub, "x", 1, &err) == -1 && strstr(err.msg, "nodir/f.txt"),
       "write into a missing folder fails naming the file (%s)", err.msg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ls -A %s | grep -c tmp", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    ok(p && fscanf(p, "%d", &n) == 1 && n == 0, "no temp files left behind");
    if (p) pclose(p);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ok(system(cmd) == 0, "cleanup");
    return done_testing();
}
