/* reward_exec.c: exec: rewards for vr-reward, a command started once that
 * answers one number per JSON line (reward.h). The command runs as /bin/sh -c
 * CMD in its own process group, so a timeout can kill all it started; its
 * stdin is written without blocking and its stdout read under poll(), so a
 * command that stops reading, stops answering or floods us cannot hang us past
 * the timeout. Nothing it says is ever taken as a silent zero. */
#include "reward.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

int vr_reward_exec_start(struct vr_reward_exec *x, const char *cmd, struct vr_err *err)
{
    int in[2], out[2];
    x->pid = 0;
    x->to_fd = x->from_fd = -1;
    x->eof = 0;
    x->status = 0;
    memset(&x->in, 0, sizeof x->in);
    if (pipe2(in, O_CLOEXEC)) return vr_err_sys(err, NULL, "exec:%s: pipe", cmd);
    if (pipe2(out, O_CLOEXEC)) {
        close(in[0]);
        close(in[1]);
        return vr_err_sys(err, NULL, "exec:%s: pipe", cmd);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        return vr_err_sys(err, NULL, "exec:%s: fork", cmd);
    }
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0) _exit(127);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with the child's own call */
    close(in[0]);
    close(out[1]);
    x->pid = pid;
    x->to_fd = in[1];
    x->from_fd = out[0];
    fcntl(x->to_fd, F_SETFL, fcntl(x->to_fd, F_GETFL) | O_NONBLOCK);
    if (!x->cmd || strcmp(x->cmd, cmd) != 0) {
        free(x->cmd);
        x->cmd = vr_xstrdup(cmd);
    }
    return 0;
}

/* write() that turns a closed pipe into EPIPE without a SIGPIPE (which ends a
 * vr stage quietly by design: that is for our stdout, not the command's stdin). */
static ssize_t write_nosig(int fd, const void *p, size_t n)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t w = write(fd, p, n);
    int e = errno;
    if (w < 0 && e == EPIPE) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {}
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return w;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* The command's name in messages: "exec:CMD", long commands cut. */
static const char *shown(const struct vr_reward_exec *x, char buf[96])
{
    size_t n = strlen(x->cmd);
    if (n <= 60) snprintf(buf, 96, "exec:%s", x->cmd);
    else snprintf(buf, 96, "exec:%.57s...", x->cmd);
    return buf;
}

/* How it ended, for a message: "exited with status 3", "was killed by signal 11". */
static void describe_status(int status, char *buf, size_t n)
{
    if (WIFEXITED(status)) snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(status),
                                           strsignal(WTERMSIG(status)));
    else snprintf(buf, n, "ended with wait status %d", status);
}

void vr_reward_exec_kill(struct vr_reward_exec *x)
{
    if (x->pid > 0) {
        kill(-x->pid, SIGKILL);
        kill(x->pid, SIGKILL);
        while (waitpid(x->pid, &x->status, 0) < 0 && errno == EINTR) {}
        x->pid = 0;
    }
    close_fd(&x->to_fd);
    close_fd(&x->from_fd);
    vr_buf_release(&x->in);
    free(x->cmd);
    x->cmd = NULL;
}

/* Read what is there into x->in; 0 on data, 1 at end of file, -1 on error. */
static int fill(struct vr_reward_exec *x)
{
    char buf[65536];
    ssize_t r = read(x->from_fd, buf, sizeof buf);
    if (r < 0) return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (r == 0) {
        x->eof = 1;
        return 1;
    }
    vr_buf_put(&x->in, buf, (size_t)r);
    return 0;
}

/* The next complete line in x->in, NUL-terminated in place (its length in
 * *n), or NULL if none has come yet; drop_line() removes it after use. */
static char *peek_line(struct vr_reward_exec *x, size_t *n)
{
    char *nl = x->in.p ? memchr(x->in.p, '\n', x->in.len) : NULL;
    if (!nl) return NULL;
    *nl = 0;
    *n = (size_t)(nl - x->in.p);
    return x->in.p;
}

static void drop_line(struct vr_reward_exec *x, size_t n)
{
    memmove(x->in.p, x->in.p + n + 1, x->in.len - n - 1);
    x->in.len -= n + 1;
    x->in.p[x->in.len] = 0;
}

/* A reward: the whole line of n bytes (ASCII blanks around it aside) is a
 * finite number; a NUL inside it is not the line's end. */
static int parse_number(const char *s, size_t n, double *v)
{
    if (memchr(s, 0, n)) return -1;
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    if (!*s) return -1;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r') end++;
    if (end == s || *end || !isfinite(*v)) return -1;
    return 0;
}

/* Printable form of a bad answer line for a message. */
static void quote_answer(const char *s, size_t full, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; s[i] && j + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\'') out[j++] = (char)c;
        else j += (size_t)snprintf(out + j, cap - j, "\\x%02x", c);
    }
    out[j] = 0;
    if (full > strlen(s) && j + 4 < cap) strcat(out, "...");
}

/* The command ended before answering everything: reap it and say how. */
static int ended_early(struct vr_reward_exec *x, const char *name, const char *what, int got, int n,
                       struct vr_err *err)
{
    char how[128];
    while (waitpid(x->pid, &x->status, 0) < 0 && errno == EINTR) {}
    x->pid = 0;
    describe_status(x->status, how, sizeof how);
    int code = WIFEXITED(x->status) ? WEXITSTATUS(x->status) : -1;
    vr_reward_exec_kill(x);
    vr_err_set(err, VR_ERR_INPUT, NULL, 0,
               "%s completion %d: %s: the command %s after %d of %d answers", what, got,
               name, how, got, n);
    if (code == 127) vr_err_hint(err, "status 127: the shell could not run the command");
    return -1;
}

/* More answers came than the n completions asked: kill it, quoting the first. */
static int too_many(struct vr_reward_exec *x, const char *name, const char *what, int n,
                    struct vr_err *err)
{
    char line[128];
    size_t k = x->in.len < sizeof line - 1 ? x->in.len : sizeof line - 1;
    memcpy(line, x->in.p, k);
    line[k] = 0;
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    char q[96];
    quote_answer(line, x->in.len, q, sizeof q);
    vr_reward_exec_kill(x);
    return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                      "%s: %s: more answers than the %d completions: '%s'", what, name, n, q);
}

int vr_reward_exec_ask(struct vr_reward_exec *x, const char *req, size_t len, int n, double *out,
                       double timeout, const char *what, struct vr_err *err)
{
    char name[96];
    shown(x, name);
    if (x->pid <= 0) {
        vr_err_set(err, VR_ERR_INPUT, NULL, 0, "%s: %s: the command is not running", what, name);
        return -1;
    }
    size_t written = 0;
    int got = 0;
    double deadline = vr_now() + timeout;
    const char *fail = NULL;
    char line[128], *ln;
    size_t full;
    while (got < n || (written < len && x->to_fd >= 0)) {
        /* answers already read */
        while (got < n && (ln = peek_line(x, &full))) {
            if (parse_number(ln, full, &out[got])) {
                char q[96];
                snprintf(line, sizeof line, "%s", ln);
                quote_answer(line, full, q, sizeof q);
                vr_reward_exec_kill(x);
                return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                                  "%s completion %d: %s: answer '%s' is not a number", what, got,
                                  name, q);
            }
            drop_line(x, full);
            got++;
            deadline = vr_now() + timeout;
        }
        if (got == n && (written == len || x->to_fd < 0)) break;
        if (x->eof) return ended_early(x, name, what, got, n, err);
        double left = deadline - vr_now();
        if (left <= 0) {
            fail = "timeout";
            break;
        }
        struct pollfd pf[2] = {{x->from_fd, POLLIN, 0}, {x->to_fd, POLLOUT, 0}};
        int np = written < len && x->to_fd >= 0 ? 2 : 1;
        int ms = left > 1e6 ? 1000000000 : (int)ceil(left * 1000);
        int pr = poll(pf, (nfds_t)np, ms);
        if (pr < 0) {
            if (errno == EINTR) continue;
            fail = "poll";
            break;
        }
        if (np == 2 && pf[1].revents) {
            ssize_t w = write_nosig(x->to_fd, req + written, len - written);
            if (w > 0) written += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                close_fd(&x->to_fd); /* it closed its input; its answers (or its end) will tell */
        }
        if (pf[0].revents && fill(x) < 0) {
            fail = "read";
            break;
        }
    }
    if (fail) {
        vr_reward_exec_kill(x);
        if (strcmp(fail, "timeout") == 0 && got == n)
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                              "%s: %s: the command stopped reading its input for %g s (killed)",
                              what, name, timeout);
        if (strcmp(fail, "timeout") == 0)
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                              "%s completion %d: %s: no answer within %g s (the command was killed)",
                              what, got, name, timeout);
        return vr_err_sys(err, NULL, "%s: %s", name, fail);
    }
    if (x->in.len) return too_many(x, name, what, n, err);
    return 0;
}

int vr_reward_exec_stop(struct vr_reward_exec *x, double timeout, struct vr_err *err)
{
    char name[96], how[128];
    if (!x->cmd) return 0;
    shown(x, name);
    close_fd(&x->to_fd);
    double deadline = vr_now() + timeout;
    int rc = 0;
    while (x->pid > 0 && !x->eof) {
        double left = deadline - vr_now();
        struct pollfd pf = {x->from_fd, POLLIN, 0};
        int pr = left > 0 ? poll(&pf, 1, (int)ceil(left * 1000)) : 0;
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            rc = 1;
            vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                       "%s: did not exit within %g s after its input ended (killed)", name, timeout);
            break;
        }
        if (fill(x) < 0) break;
    }
    if (x->in.len) {
        /* answers beyond those asked for: some were paired with the wrong completion */
        char q[96], line[128];
        size_t k = x->in.len < sizeof line - 1 ? x->in.len : sizeof line - 1;
        memcpy(line, x->in.p, k);
        line[k] = 0;
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        quote_answer(line, x->in.len, q, sizeof q);
        rc = vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                        "%s: %zu bytes of output beyond the answers asked for ('%s'): answers and "
                        "completions were out of step", name, x->in.len, q);
    } else if (rc == 0 && x->pid > 0) {
        while (waitpid(x->pid, &x->status, 0) < 0 && errno == EINTR) {}
        x->pid = 0;
        if (!WIFEXITED(x->status) || WEXITSTATUS(x->status) != 0) {
            describe_status(x->status, how, sizeof how);
            vr_err_set(err, VR_ERR_INPUT, NULL, 0, "%s: %s at the end of the input", name, how);
            rc = 1;
        }
    }
    vr_reward_exec_kill(x);
    return rc;
}
