/* reward_batch.c: scored lines held per batch, given their advantages and
 * written; vr-reward's summary line (reward.h). */
#include "reward.h"

#include "jsonl.h"

/* Advantages for the pending lines (one batch), then write them. */
int vr_reward_batch_flush(struct vr_reward_batch *b, struct vr_err *err)
{
    double bstd = b->scale == VR_SCALE_BATCH ? vr_reward_batch_std(b->pend, b->npend) : 0;
    size_t i = 0;
    int rc = 0;
    for (; i < b->npend && rc == 0; i++) {
        int degen = vr_reward_advantages(b->pend[i], b->scale, bstd);
        if (degen == -2) {
            const char *id = json_string_value(json_object_get(b->pend[i], "id"));
            rc = vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                            "line %s: its rewards are too large for advantages (their mean or spread is not finite)",
                            id ? id : "without an id");
            break;
        }
        b->groups++;
        b->degenerate += degen == 1;
        if (!(degen == 1 && b->drop)) {
            rc = vr_jsonl_write(b->out, b->pend[i], err);
            b->written += rc == 0;
        }
        json_decref(b->pend[i]);
    }
    for (; i < b->npend; i++) json_decref(b->pend[i]);
    if (rc == 0 && b->npend && fflush(b->out) != 0) rc = vr_err_sys(err, b->out_name, "write failed");
    b->npend = 0;
    return rc;
}

int vr_reward_batch_push(struct vr_reward_batch *b, json_t *line, struct vr_err *err)
{
    if (b->npend == b->cap) b->pend = vr_xrealloc(b->pend, (b->cap = b->cap ? 2 * b->cap : 16) * sizeof *b->pend);
    b->pend[b->npend++] = line;
    if (b->scale != VR_SCALE_BATCH || (b->prompts && (int64_t)b->npend == b->prompts))
        return vr_reward_batch_flush(b, err);
    return 0;
}

void vr_reward_batch_release(struct vr_reward_batch *b)
{
    for (size_t i = 0; i < b->npend; i++) json_decref(b->pend[i]);
    free(b->pend);
    b->pend = NULL;
    b->npend = b->cap = 0;
}

void vr_reward_summary(const struct vr_reward *r, const struct vr_reward_batch *b, struct vr_buf *s)
{
    vr_buf_printf(s, "%lld groups, %lld completions", (long long)b->groups, (long long)r->completions);
    if (r->completions) {
        double total = 0;
        for (int i = 0; i < r->nterms; i++)
            total += r->terms[i].weight * r->terms[i].sum / (double)r->completions;
        vr_buf_printf(s, "; mean reward %.4g (", total);
        for (int i = 0; i < r->nterms; i++)
            vr_buf_printf(s, "%s%s %.4g", i ? ", " : "", r->terms[i].name,
                          r->terms[i].sum / (double)r->completions);
        vr_buf_putc(s, ')');
    }
    vr_buf_printf(s, "; %lld degenerate%s", (long long)b->degenerate, b->drop ? " (dropped)" : "");
}
