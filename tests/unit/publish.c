/* Unit tests for lib/publish: a writer in a child process (POSIX locks belong
 * to processes), a reader here. Generations in order, the weights and their
 * metadata, a second writer refused, a stale folder never taken for current,
 * and a reader that fails instead of waiting when its writer dies. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tap.h"
#include "fs.h"
#include "publish.h"

static char *pj(const char *dir, const char *name) { return vr_path_join(dir, name); }

static void put(const char *dir, const char *name, const char *text)
{
    char *p = pj(dir, name);
    struct vr_err err;
    if (vr_file_write_atomic(p, text, strlen(text), &err)) fprintf(stderr, "%s\n", err.msg), exit(2);
    free(p);
}

/* A two-tensor table: a (2,3) and a tied alias of it, which is not stored. */
static struct vr_param P[2];
static size_t OFF[2] = {0, 0};
static float W[6] = {1.5f, -2.25f, 3.0f, 0.1f, 1e-3f, -7.0f};
static const struct vr_ptab TAB = {2, P, OFF, NULL, 6};

/* The writer: generation 0, then one more per byte read from cmd; exit on EOF. */
static void writer(const char *dir, const char *src, int cmd, int ready)
{
    struct vr_publish p;
    struct vr_err err;
    if (vr_publish_open(&p, dir, src, 3, &err)) fprintf(stderr, "%s\n", err.msg), _exit(2);
    char c;
    for (int64_t g = 0;; g++) {
        W[0] = (float)g;
        if (vr_publish_weights(&p, g, src, &TAB, W, VR_DTYPE_BF16, &err) || vr_publish_mark(&p, g, &err))
            fprintf(stderr, "%s\n", err.msg), _exit(2);
        if (write(ready, "r", 1) != 1 || read(cmd, &c, 1) != 1) break;
    }
    vr_publish_close(&p);
    _exit(0);
}

static pid_t start(const char *dir, const char *src, int *cmd, int *ready)
{
    int a[2], b[2];
    if (pipe(a) || pipe(b)) exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        close(a[1]);
        close(b[0]);
        writer(dir, src, a[0], b[1]);
    }
    close(a[0]);
    close(b[1]);
    *cmd = a[1];
    *ready = b[0];
    char c;
    if (read(*ready, &c, 1) != 1) exit(2); /* generation 0 is out */
    return pid;
}

int main(void)
{
    char tmpl[] = "/tmp/vr-publish-test.XXXXXX";
    char *root = mkdtemp(tmpl);
    if (!root) return 2;
    char *src = pj(root, "model"), *dir = pj(root, "live");
    struct vr_err err;
    if (vr_mkdir_p(src, &err)) return 2;
    put(src, "config.json", "{\"torch_dtype\":\"float32\",\"x\":1}\n");
    put(src, "tokenizer.json", "{}\n");
    put(src, "model.safetensors", "not read");
    snprintf(P[0].name, sizeof P[0].name, "a.weight");
    P[0].ndim = 2, P[0].shape[0] = 2, P[0].shape[1] = 3;
    P[1] = P[0];
    snprintf(P[1].name, sizeof P[1].name, "b.weight");
    P[1].tied = 1;

    /* an earlier run's leftovers: a generation file and an adapter */
    if (vr_mkdir_p(dir, &err)) return 2;
    put(dir, "generation", "{\"generation\":99,\"pid\":1,\"prompts_per_step\":3}\n");
    put(dir, "adapter_config.json", "{}\n");
    struct vr_publish_reader rd;
    vr_publish_reader_init(&rd, dir);
    int64_t gen = 7;
    ok(vr_publish_poll(&rd, &gen, &err) == 0 && gen == -1, "a folder nobody holds: no generation yet");
    rd.start_timeout = 0;
    ok(vr_publish_poll(&rd, &gen, &err) == -1 && strstr(err.msg, "no vr-update --publish has written here"),
       "... and an error once the start timeout is over: %s", err.msg);
    vr_publish_reader_release(&rd);

    struct vr_publish p;
    ok(vr_publish_open(&p, src, src, 1, &err) == -1 && strstr(err.msg, "is the model folder"),
       "the model folder is refused: %s", err.msg);

    int cmd, ready;
    pid_t pid = start(dir, src, &cmd, &ready);
    char *ap = pj(dir, "adapter_config.json");
    struct stat sb;
    ok(stat(ap, &sb) != 0, "the writer removed the stale adapter");
    free(ap);
    vr_publish_reader_init(&rd, dir);
    ok(vr_publish_poll(&rd, &gen, &err) == 0 && gen == 0 && rd.writer == pid && rd.prompts_per_step == 3,
       "generation 0 from the live writer, its pid and batch size");
    ok(vr_publish_open(&p, dir, src, 1, &err) == -1 && strstr(err.msg, "another process") &&
           strstr(err.msg, "publishes here"),
       "a second writer is refused: %s", err.msg);

    /* the weights: bf16 as vr_convert_from_f32 makes them, the tied alias not stored */
    struct vr_stset st;
    if (vr_stset_open(&st, dir, &err) == 0) {
        const struct vr_st_entry *e = vr_stset_find(&st, "a.weight", NULL);
        uint16_t want[6];
        W[0] = 0;
        vr_convert_from_f32(want, VR_DTYPE_BF16, W, 6);
        ok(st.nfiles == 1 && st.files[0].n == 1 && e && e->dtype == VR_DTYPE_BF16 &&
               memcmp(st.files[0].data + e->begin, want, sizeof want) == 0,
           "model.safetensors: the one untied tensor, bf16 of the master values");
        is_int(vr_publish_generation_of(&st), 0, "its metadata says generation 0");
        vr_stset_close(&st);
    } else {
        ok(0, "%s", err.msg);
    }
    char *cp = pj(dir, "config.json"), *buf;
    size_t len;
    ok(vr_file_read(cp, &buf, &len, &err) == 0 && strstr(buf, "bfloat16") && strstr(buf, "\"x\""),
       "config.json copied with the weights' dtype");
    free(buf);
    free(cp);

    /* the next generations */
    char c = 'n';
    ok(write(cmd, &c, 1) == 1 && vr_publish_wait(&rd, 1, &gen, &err) == 0 && gen == 1, "wait for generation 1");
    if (read(ready, &c, 1) != 1) return 2;
    ok(write(cmd, &c, 1) == 1 && write(cmd, &c, 1) == 1, "two more");
    if (read(ready, &c, 1) != 1 || read(ready, &c, 1) != 1) return 2;
    ok(vr_publish_wait(&rd, 2, &gen, &err) == 0 && gen == 3, "waiting for 2 when 3 is out gives 3");
    if (vr_stset_open(&st, dir, &err) == 0) {
        is_int(vr_publish_generation_of(&st), 3, "the weights say generation 3");
        vr_stset_close(&st);
    }

    /* the writer goes: a waiting reader fails instead of hanging */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ok(vr_publish_wait(&rd, 4, &gen, &err) == -1 && strstr(err.msg, "is gone"),
       "a dead writer ends the wait: %s", err.msg);
    vr_publish_reader_release(&rd);

    /* a new writer on the same folder: a reader never sees the old generation 3 */
    pid = start(dir, src, &cmd, &ready);
    vr_publish_reader_init(&rd, dir);
    ok(vr_publish_poll(&rd, &gen, &err) == 0 && gen == 0 && rd.writer == pid, "a new run starts again at 0");
    close(cmd);
    waitpid(pid, NULL, 0);
    ok(vr_publish_poll(&rd, &gen, &err) == -1 && strstr(err.msg, "is gone"), "a writer that ended is gone too");
    vr_publish_reader_release(&rd);
    close(ready);

    char cmdline[600];
    snprintf(cmdline, sizeof cmdline, "rm -rf '%s'", root);
    if (system(cmdline) != 0) diag("could not remove %s", root);
    free(src);
    free(dir);
    return done_testing();
}
