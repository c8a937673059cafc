/* backend.c: which op table this process runs on (ops.h, VR_DEVICE). The
 * CUDA table lives in a shared library loaded on demand, so the programs
 * neither link nor start the CUDA runtime unless it is asked for or a GPU is
 * there. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"

static const struct vr_backend *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The CUDA table from the first libvr_cuda.so that loads: VR_CUDA_LIB, else
 * beside the program, else in ../lib/vr/ (an installed tree). NULL with the
 * reason in msg. */
static const struct vr_backend *load_cuda(char *msg, size_t n)
{
    char exe[PATH_MAX], tries[3][PATH_MAX + 32];
    int ntry = 0;
    const char *env = getenv("VR_CUDA_LIB");
    if (env && *env) {
        snprintf(tries[ntry++], sizeof tries[0], "%s", env);
        snprintf(msg, n, "VR_CUDA_LIB=%s: no such file", env);
    } else {
        snprintf(msg, n, "no libvr_cuda.so beside the program or in ../lib/vr/ (vr was built without nvcc?)");
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (len > 0) {
            exe[len] = 0;
            char *slash = strrchr(exe, '/');
            if (slash) *slash = 0;
            snprintf(tries[ntry++], sizeof tries[0], "%s/libvr_cuda.so", exe);
            snprintf(tries[ntry++], sizeof tries[0], "%s/../lib/vr/libvr_cuda.so", exe);
        }
    }
    for (int i = 0; i < ntry; i++) {
        if (access(tries[i], F_OK) != 0) continue;
        void *h = dlopen(tries[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(msg, n, "%s", dlerror());
            return NULL;
        }
        const struct vr_backend *(*open)(const struct vr_cuda_host *, char *, size_t) =
            (const struct vr_backend *(*)(const struct vr_cuda_host *, char *, size_t))dlsym(h, "vr_cuda_backend_open");
        if (!open) {
            snprintf(msg, n, "%s: no vr_cuda_backend_open", tries[i]);
            return NULL;
        }
        const struct vr_cuda_host host = {&vr_backend_cpu, vr_weight_f32};
        return open(&host, msg, n);
    }
    return NULL;
}

static void choose_device(void)
{
    const char *dev = getenv("VR_DEVICE");
    char msg[512];
    if (dev && *dev && strcmp(dev, "cpu") && strcmp(dev, "cuda")) {
        fprintf(stderr, "%s: VR_DEVICE=%s: not a device (cpu or cuda)\n", program_invocation_short_name, dev);
        exit(2);
    }
    chosen = &vr_backend_cpu;
    if (dev && !strcmp(dev, "cpu")) return;
    int asked = dev && !strcmp(dev, "cuda");
    if (!asked && access("/dev/nvidiactl", F_OK) != 0) return; /* no NVIDIA driver: nothing to load */
    const struct vr_backend *b = load_cuda(msg, sizeof msg);
    if (b) chosen = b;
    else if (asked) {
        fprintf(stderr, "%s: VR_DEVICE=cuda: %s\n", program_invocation_short_name, msg);
        exit(1);
    }
}

static void choose(void)
{
    choose_device();
    const char *prof = getenv("VR_PROFILE");
    if (prof && *prof) chosen = vr_profile_wrap(chosen, prof);
}

const struct vr_backend *vr_backend(void)
{
    pthread_once(&once, choose);
    return chosen;
}
