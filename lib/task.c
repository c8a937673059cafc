/* task.c: task lines (see task.h). Used by vr-prep and by every later stage
 * that accepts tasks. */
#include "task.h"

#include <math.h>
#include <string.h>

int vr_box_parse(const json_t *v, const char *what, double box[4], struct vr_err *err)
{
    if (!json_is_array(v))
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' is not a list of 4 numbers", what);
    if (json_array_size(v) != 4)
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' has %zu numbers, expected 4", what,
                          json_array_size(v));
    for (int i = 0; i < 4; i++) {
        const json_t *x = json_array_get(v, (size_t)i);
        if (!json_is_number(x))
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' entry %d is not a number", what, i);
        box[i] = json_number_value(x);
        if (!isfinite(box[i]))
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' entry %d is not finite", what, i);
    }
    if (!(box[0] < box[2]))
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' has x1 %g >= x2 %g", what, box[0], box[2]);
    if (!(box[1] < box[3]))
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' has y1 %g >= y2 %g", what, box[1], box[3]);
    return 0;
}

int vr_box_check_inside(const double box[4], const char *what, int w, int h, struct vr_err *err)
{
    if (box[0] < 0 || box[1] < 0 || box[2] > w || box[3] > h)
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                          "'%s' [%g, %g, %g, %g] is outside the %dx%d image", what, box[0], box[1],
                          box[2], box[3], w, h);
    return 0;
}

json_t *vr_task_new(const char *id, const char *split, int nimages, const char *const *images,
                    const int (*sizes)[2], const char *problem, json_t *solution,
                    const char *label)
{
    json_t *t = json_object();
    json_object_set_new(t, "id", json_string(id));
    json_object_set_new(t, "split", json_string(split));
    json_object_set_new(t, "task", json_string(json_is_array(solution) ? "rec" : "qa"));
    json_t *im = json_array();
    for (int i = 0; i < nimages; i++) json_array_append_new(im, json_string(images[i]));
    json_object_set_new(t, "images", im);
    int known = sizes != NULL && nimages > 0;
    for (int i = 0; known && i < nimages; i++) known = sizes[i][0] > 0 && sizes[i][1] > 0;
    if (known) {
        json_t *s = json_array();
        for (int i = 0; i < nimages; i++)
            json_array_append_new(s, json_pack("[ii]", sizes[i][0], sizes[i][1]));
        json_object_set_new(t, "image_sizes", s);
    }
    json_object_set_new(t, "problem", json_string(problem));
    json_object_set_new(t, "solution", solution);
    if (label) json_object_set_new(t, "label", json_string(label));
    return t;
}

static int validate(const json_t *t, int need_solution, const char *file, long line, struct vr_err *err)
{
    const json_t *id = json_object_get(t, "id"), *im = json_object_get(t, "images"),
                 *pr = json_object_get(t, "problem"), *so = json_object_get(t, "solution"),
                 *sz = json_object_get(t, "image_sizes");
    if (!json_is_string(id))
        return vr_err_set(err, VR_ERR_INPUT, file, line, "'id' is missing or not a string");
    if (!json_is_array(im))
        return vr_err_set(err, VR_ERR_INPUT, file, line, "'images' is missing or not a list");
    for (size_t i = 0; i < json_array_size(im); i++)
        if (!json_is_string(json_array_get(im, i)) || !json_string_length(json_array_get(im, i)))
            return vr_err_set(err, VR_ERR_INPUT, file, line, "'images' entry %zu is not a file name",
                              i);
    if (!json_is_string(pr))
        return vr_err_set(err, VR_ERR_INPUT, file, line, "'problem' is missing or not a string");
    if (!so && need_solution) return vr_err_set(err, VR_ERR_INPUT, file, line, "'solution' is missing");
    const json_t *th = json_object_get(t, "think");
    if (th && !json_is_string(th))
        return vr_err_set(err, VR_ERR_INPUT, file, line, "'think' is not a string");
    if (sz) {
        if (!json_is_array(sz) || json_array_size(sz) != json_array_size(im))
            return vr_err_set(err, VR_ERR_INPUT, file, line,
                              "'image_sizes' must hold one [width, height] per image");
        for (size_t i = 0; i < json_array_size(sz); i++) {
            const json_t *p = json_array_get(sz, i);
            if (!json_is_array(p) || json_array_size(p) != 2 ||
                !json_is_integer(json_array_get(p, 0)) || !json_is_integer(json_array_get(p, 1)) ||
                json_integer_value(json_array_get(p, 0)) <= 0 ||
                json_integer_value(json_array_get(p, 1)) <= 0 ||
                json_integer_value(json_array_get(p, 0)) > VR_TASK_MAX_SIDE ||
                json_integer_value(json_array_get(p, 1)) > VR_TASK_MAX_SIDE)
                return vr_err_set(err, VR_ERR_INPUT, file, line,
                                  "'image_sizes' entry %zu is not [width, height] in pixels, 1 to %d", i,
                                  VR_TASK_MAX_SIDE);
        }
    }
    if (!so || json_is_string(so)) return 0;
    double box[4];
    if (vr_box_parse(so, "solution", box, err)) return vr_err_locate(err, file, line);
    if (sz && json_array_size(sz) > 0) {
        const json_t *p = json_array_get(sz, 0);
        if (vr_box_check_inside(box, "solution", (int)json_integer_value(json_array_get(p, 0)),
                                (int)json_integer_value(json_array_get(p, 1)), err))
            return vr_err_locate(err, file, line);
    }
    return 0;
}

int vr_task_validate(const json_t *t, const char *file, long line, struct vr_err *err)
{
    return validate(t, 1, file, line, err);
}

int vr_task_validate_unlabelled(const json_t *t, const char *file, long line, struct vr_err *err)
{
    return validate(t, 0, file, line, err);
}

char *vr_rec_label_from_problem(const char *problem)
{
    size_t pl = strlen(VR_REC_PREFIX);
    if (strncmp(problem, VR_REC_PREFIX, pl) != 0) return NULL;
    char *s = vr_xstrdup(problem + pl);
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n')) s[--n] = 0;
    if (n && s[n - 1] == '.') s[--n] = 0;
    return s;
}
