/* vr-tokenize: text -> token ids, ids -> text, and task lines -> the rendered
 * Qwen2.5-VL chat prompt with its ids. A debugging tool beside the pipeline
 * (as llama.cpp's llama-tokenize); lib/tokenize.h holds the line formats
 * around lib/bpe and lib/chat. */
#include <string.h>

#include "cli.h"
#include "fileset.h"
#include "fs.h"
#include "progress.h"
#include "tokenize.h"

static struct vr_tokenize c;
static const char *tokfile, *model, *tmpl;
static int64_t minpx, maxpx;
static int decode, chat, stats;

static const struct vr_opt opts[] = {
    VR_OPT_STRING("tokenizer", 't', "FILE", &tokfile, "the tokenizer.json to use"),
    VR_OPT_STRING("model", 'm', "DIR", &model, "a checkpoint folder: its tokenizer.json (and preprocessor_config.json)"),
    VR_OPT_FLAG("json", 0, &c.json, "input lines are JSON strings; --decode prints JSON strings"),
    VR_OPT_FLAG("decode", 'd', &decode, "read JSON arrays of ids (or objects with \"ids\") and print their text"),
    VR_OPT_FLAG("chat", 0, &chat, "read task lines; print the chat prompt: {\"text\", \"ids\", \"n_tokens\"}"),
    VR_OPT_STRING("system", 0, "TEXT", &c.chat.system, "--chat: system prompt (default \"You are a helpful assistant.\")"),
    VR_OPT_STRING("template", 0, "NAME|FILE", &tmpl, "--chat: question template r1, baseline, none, or a file with {Question} (default r1)"),
    VR_OPT_FLAG("assistant", 0, &c.chat.assistant, "--chat: add the answer as an assistant turn (for SFT)"),
    VR_OPT_I64("min-pixels", 0, "N", &minpx, 1, 1L << 40, "--chat: smart_resize lower bound (default 3136)"),
    VR_OPT_I64("max-pixels", 0, "N", &maxpx, 1, 1L << 40, "--chat: smart_resize upper bound (default 12845056)"),
    VR_OPT_FLAG("skip-special", 0, &c.skip_special, "--decode: leave out special tokens"),
    VR_OPT_FLAG("split-special", 0, &c.split_special, "encode special-token text as plain text"),
    VR_OPT_FLAG("stats", 0, &stats, "print load time, lines, bytes, tokens and MB/s on standard error"),
    VR_OPT_END,
};

static const struct vr_cli cli = {
    "vr-tokenize",
    "(--tokenizer FILE | --model DIR) [OPTION]... [FILE]...",
    "Print the token ids of each input line as a JSON array, as the tokenizers library\n"
    "gives them; --decode does the reverse; --chat renders task lines as the Qwen2.5-VL\n"
    "chat prompt. Reads the FILEs, or standard input.",
    opts,
};

/* The checks between flags, and the mode. */
static void check(void)
{
    if (!tokfile == !model) vr_die_usage("give one of --tokenizer FILE and --model DIR");
    if (decode && chat) vr_die_usage("--decode and --chat exclude each other");
    c.mode = chat ? VR_TOKENIZE_CHAT : decode ? VR_TOKENIZE_DECODE : VR_TOKENIZE_ENCODE;
    if (!chat && (c.chat.system || tmpl || c.chat.assistant || minpx || maxpx))
        vr_die_usage("--system, --template, --assistant and --min/max-pixels go with --chat");
    if (c.skip_special && !decode) vr_die_usage("--skip-special goes with --decode");
    if (c.split_special && c.mode != VR_TOKENIZE_ENCODE) vr_die_usage("--split-special is for encoding");
}

int main(int argc, char **argv)
{
    struct vr_err err;
    int ind = vr_cli_parse(&cli, argc, argv);
    check();
    if (model && vr_fileset_settle(model, &err)) vr_die(&err); /* one save's files (fileset.h) */
    char *tokpath = model ? vr_path_join(model, "tokenizer.json") : vr_xstrdup(tokfile);
    double t0 = vr_now();
    if (vr_bpe_load(&c.tok, tokpath, &err)) vr_die(&err);
    double load_s = vr_now() - t0;

    char *tmpl_text = NULL;
    if (chat) {
        vr_task_limits_default(&c.lim);
        if (model) vr_tokenize_preprocessor(&c, model);
        if (minpx) c.lim.min_pixels = (long)minpx;
        if (maxpx) c.lim.max_pixels = (long)maxpx;
        if (c.lim.min_pixels > c.lim.max_pixels)
            vr_die_usage("--min-pixels %ld is above --max-pixels %ld", c.lim.min_pixels, c.lim.max_pixels);
        if (vr_chat_template_arg(tmpl ? tmpl : "r1", &c.chat.tmpl, &tmpl_text, &err)) vr_die(&err);
    }

    t0 = vr_now();
    if (ind >= argc && vr_tokenize_file(&c, "-", stdout, "<stdout>", &err)) vr_die(&err);
    for (int i = ind; i < argc; i++)
        if (vr_tokenize_file(&c, argv[i], stdout, "<stdout>", &err)) vr_die(&err);
    if (vr_tokenize_flush(&c, stdout, "<stdout>", &err)) vr_die(&err);
    if (fflush(stdout) != 0 || ferror(stdout)) vr_die_msg("<stdout>: write failed");
    double run_s = vr_now() - t0;
    if (stats)
        fprintf(stderr,
                "%s: load %.1f ms, %ld lines, %.0f bytes, %ld tokens, %.3f s, %.2f MB/s\n",
                vr_prog, load_s * 1e3, c.lines, c.bytes, c.tokens, run_s,
                run_s > 0 ? c.bytes / run_s / 1e6 : 0.0);
    free(tmpl_text);
    free(tokpath);
    vr_tokenize_release(&c);
    vr_bpe_free(c.tok);
    return 0;
}
