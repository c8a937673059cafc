#!/usr/bin/env python3
"""make_optim_golden.py: the expected numbers of tests/unit/optim.c, from torch
and transformers. Prints C to paste into the test (CI never runs Python):

    python3 tests/golden/make_optim_golden.py > /tmp/optim_golden.inc

Inputs (weights, gradients) come from a 64-bit LCG that the test repeats, so
only the results are pasted. Every value is a float32 bit pattern or a double
printed with 17 digits.

AdamW: torch.optim.AdamW(foreach=False) on CPU, several tensors, one of them
frozen (not given to the optimizer, though it has a gradient). Two results
are printed: torch's own (its CPU sqrt is MKL's vsSqrt, within 1 ulp of the
exact root), and the same single-tensor algorithm written out with torch's
ops but a correctly rounded sqrt (float64 sqrt rounded to float32), which vr
must match bit for bit. The script asserts the write-out reproduces
torch.optim.AdamW exactly when it uses torch's sqrt.
"""
import math

import torch
import transformers

M64 = (1 << 64) - 1


class Lcg:
    """state = state * A + C mod 2^64; a value is the top 24 bits mapped to
    [-1, 1) times a power of two, exact in float32."""

    def __init__(self, seed):
        self.s = seed & M64

    def next(self, scale):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & M64
        u = self.s >> 40
        return (u / 8388608.0 - 1.0) * scale


def f32_bits(t):
    return [int(x) & 0xFFFFFFFF for x in t.detach().contiguous().view(torch.int32).tolist()]


def emit_u32(name, rows):
    """rows: list of lists of u32 -> static const uint32_t name[len][n]"""
    n = len(rows[0])
    print(f"static const uint32_t {name}[{len(rows)}][{n}] = {{")
    for r in rows:
        print("    {")
        for i in range(0, n, 6):
            print("        " + ", ".join(f"0x{x:08x}" for x in r[i:i + 6]) + ",")
        print("    },")
    print("};")


def adam_writeout(params, grads, state, lr, beta1, beta2, eps, wd, exact_sqrt):
    """torch/optim/adam.py _single_tensor_adam (decoupled weight decay, not
    capturable, not differentiable, no amsgrad), with a choice of sqrt."""
    for p, g in zip(params, grads):
        st = state.setdefault(id(p), {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(p),
                                      "exp_avg_sq": torch.zeros_like(p)})
        st["step"] += 1
        if wd != 0:
            p.mul_(1 - lr * wd)
        st["exp_avg"].lerp_(g, 1 - beta1)
        st["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
        step = st["step"].item()
        bc1 = 1 - beta1 ** step
        bc2 = 1 - beta2 ** step
        step_size = lr / bc1
        bc2s = bc2 ** 0.5
        v = st["exp_avg_sq"]
        root = v.double().sqrt().float() if exact_sqrt else v.sqrt()
        denom = (root / bc2s).add_(eps)
        p.addcdiv_(st["exp_avg"], denom, value=-step_size)


def adamw_case(tag, seed, sizes, frozen, steps, betas, eps, wd, sched, base_lr, warmup, total, gscale):
    rng = Lcg(seed)
    n = sum(sizes)
    w0 = [rng.next(1.0) for _ in range(n)]
    # gradients of every element (frozen ones too), every step
    g_all = []
    for s in range(steps):
        g = [rng.next(gscale[s]) for _ in range(n)]
        for i in range(0, n, 7):
            g[i] = 0.0
        g_all.append(g)

    def split(flat):
        out, o = [], 0
        for k in sizes:
            out.append(torch.tensor(flat[o:o + k], dtype=torch.float32))
            o += k
        return out

    # torch.optim.AdamW
    ps = [torch.nn.Parameter(t) for t in split(w0)]
    train = [p for i, p in enumerate(ps) if i not in frozen]
    opt = torch.optim.AdamW(train, lr=base_lr, betas=betas, eps=eps, weight_decay=wd, foreach=False)
    sch = transformers.get_scheduler(sched, opt, num_warmup_steps=warmup, num_training_steps=total)
    # write-outs: torch's sqrt (must equal torch.optim) and the exact sqrt
    wa = [t.clone() for t in split(w0)]
    wb = [t.clone() for t in split(w0)]
    sta, stb = {}, {}
    rows = {"w_torch": [], "w_exact": [], "m": [], "v": [], "lr": []}
    for s in range(steps):
        gs = split(g_all[s])
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        lr = opt.param_groups[0]["lr"]
        rows["lr"].append(lr)
        opt.step()
        sch.step()
        tr = [i for i in range(len(sizes)) if i not in frozen]
        adam_writeout([wa[i] for i in tr], [gs[i] for i in tr], sta, lr, *betas, eps, wd, False)
        adam_writeout([wb[i] for i in tr], [gs[i] for i in tr], stb, lr, *betas, eps, wd, True)
        for i in tr:
            assert torch.equal(wa[i], ps[i].data), "write-out differs from torch.optim.AdamW"
            assert torch.equal(sta[id(wa[i])]["exp_avg"], opt.state[ps[i]]["exp_avg"])
            assert torch.equal(sta[id(wa[i])]["exp_avg_sq"], opt.state[ps[i]]["exp_avg_sq"])
            assert torch.equal(stb[id(wb[i])]["exp_avg"], opt.state[ps[i]]["exp_avg"])
        m, v = [], []
        for i, p in enumerate(ps):
            if i in frozen:
                m.append(torch.zeros(sizes[i]))
                v.append(torch.zeros(sizes[i]))
            else:
                m.append(opt.state[p]["exp_avg"])
                v.append(opt.state[p]["exp_avg_sq"])
        rows["w_torch"].append(f32_bits(torch.cat([p.data for p in ps])))
        rows["w_exact"].append(f32_bits(torch.cat(wb)))
        rows["m"].append(f32_bits(torch.cat(m)))
        rows["v"].append(f32_bits(torch.cat(v)))
    print(f"/* {tag}: sizes {sizes}, frozen {sorted(frozen)}, betas {betas}, eps {eps}, wd {wd},")
    print(f" * {sched} lr {base_lr} warmup {warmup} total {total}, seed {seed}; step lrs {rows['lr']} */")
    for k in ("w_torch", "w_exact", "m", "v"):
        emit_u32(f"{tag}_{k}", rows[k])


def clip_case(tag, seed, sizes, max_norm, scale):
    rng = Lcg(seed)
    n = sum(sizes)
    g = [rng.next(scale) for _ in range(n)]
    ps, o = [], 0
    for k in sizes:
        p = torch.nn.Parameter(torch.zeros(k))
        p.grad = torch.tensor(g[o:o + k], dtype=torch.float32)
        ps.append(p)
        o += k
    tn = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=2.0, foreach=False)
    exact = math.sqrt(sum(x * x for x in g))
    print(f"/* {tag}: sizes {sizes}, max_norm {max_norm}, seed {seed}; torch's norm {tn.item()!r},")
    print(f" * exact {exact!r} */")
    print(f"static const uint32_t {tag}_norm = 0x{f32_bits(tn.reshape(1))[0]:08x};")
    emit_u32(f"{tag}_g", [f32_bits(torch.cat([p.grad for p in ps]))])


def sched_cases():
    cases = [("constant", 0, 10), ("constant_with_warmup", 3, 10), ("linear", 0, 10), ("linear", 3, 10),
             ("linear", 4, 4), ("cosine", 0, 10), ("cosine", 3, 10), ("cosine", 2, 7)]
    nsteps = 13
    print("/* transformers.get_scheduler(name, opt, warmup, total) with AdamW(lr=3e-4): the lr of")
    print(f" * optimizer steps 0..{nsteps - 1} (read before each opt.step(), then sched.step()) */")
    print("static const struct sched_case {\n    const char *name;\n    int warmup, total;\n"
          f"    double lr[{nsteps}];\n}} sched_cases[] = {{")
    for name, warm, total in cases:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.AdamW([p], lr=3e-4)
        sch = transformers.get_scheduler(name, opt, num_warmup_steps=warm, num_training_steps=total)
        lrs = []
        for _ in range(nsteps):
            lrs.append(opt.param_groups[0]["lr"])
            p.grad = torch.zeros(1)
            opt.step()
            sch.step()
        print(f'    {{"{name}", {warm}, {total}, {{' + ", ".join(f"{x!r}" for x in lrs) + "}},")
    print("};")


def main():
    print(f"/* generated by tests/golden/make_optim_golden.py: torch {torch.__version__}, "
          f"transformers {transformers.__version__}, CPU {torch.backends.cpu.get_cpu_capability()} */")
    adamw_case("ga", 1, [20, 6, 3, 9], {1}, 4, (0.9, 0.999), 1e-8, 0.1, "cosine", 1e-2, 0, 6,
               [2.0 ** -6, 2.0 ** -3, 1.0, 8.0])
    # beta1 < 0.5 takes lerp's other branch
    adamw_case("gb", 2, [20, 3], set(), 3, (0.4, 0.95), 1e-6, 0.0, "constant", 5e-2, 0, 3,
               [1.0, 2.0 ** -4, 4.0])
    clip_case("gc", 3, [20, 3, 9], 1.0, 1.0)
    sched_cases()


if __name__ == "__main__":
    main()
