/* Activations: the one-op ones (relu, tanh, sigmoid, elu, softmax) and
 * the composites Keras users expect, written with primitive ops so that
 * both backends, autodiff and fusion handle them unchanged. Names,
 * defaults and formulas follow Keras 3 (keras.activations):
 *   leaky_relu(x, negative_slope=0.2)  x > 0 ? x : negative_slope * x
 *   softplus(x)     log(1 + exp(x)) as m + log(exp(-m) + exp(x - m)), m = relu(x)
 *   softsign(x)     x / (1 + |x|)
 *   selu(x)         1.0507009873554805 * elu(x, 1.6732632423543772)
 *   silu(x), swish  x * sigmoid(x)
 *   hard_sigmoid(x) clip(x / 6 + 1/2, 0, 1)          (relu6(x + 3) / 6)
 *   hard_silu(x)    x * hard_sigmoid(x)
 *   gelu(x, approximate=false)
 *                   exact: x/2 * (1 + erf(x / sqrt(2)))
 *                   tanh:  x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
 * softplus's shifted form never overflows and its gradient is
 * exp(x - m) / (exp(-m) + exp(x - m)) = sigmoid(x) exactly, also at 0,
 * because the shift's derivative cancels. Without log1p its value is exact
 * to an ulp of 1 absolutely, not relatively: below about -17 (f32) it is 0
 * where log1p would keep exp(x), and at -30 in f64 it is 1e-3 off
 * relatively (its gradient, sigmoid(x), stays accurate). */
#include "fe.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *word;
    Activation act;
} act_words[] = {
    {"none", ACT_NONE},           {"linear", ACT_NONE},       {"relu", ACT_RELU},
    {"tanh", ACT_TANH},           {"sigmoid", ACT_SIGMOID},   {"elu", ACT_ELU},
    {"softmax", ACT_SOFTMAX},     {"leaky_relu", ACT_LEAKY_RELU}, {"gelu", ACT_GELU},
    {"softplus", ACT_SOFTPLUS},   {"softsign", ACT_SOFTSIGN}, {"selu", ACT_SELU},
    {"silu", ACT_SWISH},          {"swish", ACT_SWISH},       {"hard_sigmoid", ACT_HARD_SIGMOID},
    {"hard_silu", ACT_HARD_SILU}, {"hard_swish", ACT_HARD_SILU},
};

const char *fe_activation_word(Activation act)
{
    for (int k = 0; k < ARRAY_LEN(act_words); k++)
        if (act_words[k].act == act)
            return act_words[k].word;
    return "?";
}

bool fe_arg_activation(FeCtx *c, CallArgs *a, int i, Activation *out)
{
    const char *words[ARRAY_LEN(act_words) + 1];
    for (int k = 0; k < ARRAY_LEN(act_words); k++)
        words[k] = act_words[k].word;
    words[ARRAY_LEN(act_words)] = NULL;
    int k;
    if (!fe_arg_word(c, a, i, words, 0, &k))
        return false;
    *out = act_words[k].act;
    return true;
}

double fe_activation_default(Activation act)
{
    return act == ACT_LEAKY_RELU ? 0.2 : act == ACT_ELU ? 1.0 : 0.0;
}

static Node *k_(FeCtx *c, Node *like, double v, SrcLoc loc)
{
    return fe_const_like(c, like, v, loc);
}

static Node *mul(FeCtx *c, Node *a, Node *b, SrcLoc loc)
{
    return fe_op2(c, OP_MUL, a, b, loc);
}

static Node *add(FeCtx *c, Node *a, Node *b, SrcLoc loc)
{
    return fe_op2(c, OP_ADD, a, b, loc);
}

static Node *elu(FeCtx *c, Node *x, double alpha, SrcLoc loc)
{
    Attrs at = ir_attrs();
    at.value = alpha;
    return fe_op(c, OP_ELU, &x, 1, &at, loc);
}

static Node *hard_sigmoid(FeCtx *c, Node *x, SrcLoc loc)
{
    Node *y = add(c, mul(c, x, k_(c, x, 1.0 / 6.0, loc), loc), k_(c, x, 0.5, loc), loc);
    y = fe_op2(c, OP_MAXIMUM, y, k_(c, x, 0, loc), loc);
    return fe_op2(c, OP_MINIMUM, y, k_(c, x, 1, loc), loc);
}

static Node *gelu(FeCtx *c, Node *x, bool approximate, SrcLoc loc)
{
    Node *inner;
    if (approximate) {
        Node *x3 = mul(c, fe_op1(c, OP_SQUARE, x, loc), x, loc);
        inner = add(c, x, mul(c, k_(c, x, 0.044715, loc), x3, loc), loc);
        inner = fe_op1(c, OP_TANH, mul(c, k_(c, x, sqrt(2.0 / M_PI), loc), inner, loc), loc);
    } else {
        inner = fe_op1(c, OP_ERF, mul(c, x, k_(c, x, M_SQRT1_2, loc), loc), loc);
    }
    Node *half_x = mul(c, k_(c, x, 0.5, loc), x, loc);
    return mul(c, half_x, add(c, k_(c, x, 1, loc), inner, loc), loc);
}

Node *fe_activate_param(FeCtx *c, Node *x, Activation act, double param, SrcLoc loc)
{
    if (!x || act == ACT_NONE)
        return x;
    switch (act) {
    case ACT_RELU:
        return fe_op1(c, OP_RELU, x, loc);
    case ACT_TANH:
        return fe_op1(c, OP_TANH, x, loc);
    case ACT_SIGMOID:
        return fe_op1(c, OP_SIGMOID, x, loc);
    case ACT_ELU:
        return elu(c, x, param, loc);
    case ACT_SOFTMAX: {
        Attrs at = ir_attrs();
        at.naxes = 1;
        at.axes[0] = x->shape.rank - 1;
        return fe_op(c, OP_SOFTMAX, &x, 1, &at, loc);
    }
    case ACT_LEAKY_RELU: {
        Node *in[3] = {fe_op2(c, OP_GT, x, k_(c, x, 0, loc), loc), x, mul(c, k_(c, x, param, loc), x, loc)};
        return fe_op(c, OP_SELECT, in, 3, NULL, loc);
    }
    case ACT_GELU:
        return gelu(c, x, param != 0, loc);
    case ACT_SOFTPLUS: {
        Node *m = fe_op1(c, OP_RELU, x, loc);
        Node *s = add(c, fe_op1(c, OP_EXP, fe_op1(c, OP_NEG, m, loc), loc),
                      fe_op1(c, OP_EXP, fe_op2(c, OP_SUB, x, m, loc), loc), loc);
        return add(c, m, fe_op1(c, OP_LOG, s, loc), loc);
    }
    case ACT_SOFTSIGN:
        return fe_op2(c, OP_DIV, x, add(c, k_(c, x, 1, loc), fe_op1(c, OP_ABS, x, loc), loc), loc);
    case ACT_SELU:
        return mul(c, k_(c, x, 1.0507009873554804934193349852946, loc),
                   elu(c, x, 1.6732632423543772848170429916717, loc), loc);
    case ACT_SWISH:
        return mul(c, x, fe_op1(c, OP_SIGMOID, x, loc), loc);
    case ACT_HARD_SIGMOID:
        return hard_sigmoid(c, x, loc);
    case ACT_HARD_SILU:
        return mul(c, x, hard_sigmoid(c, x, loc), loc);
    case ACT_NONE:
    case ACT_COUNT:
        break;
    }
    return x;
}

Node *fe_activate(FeCtx *c, Node *x, Activation act, SrcLoc loc)
{
    return fe_activate_param(c, x, act, fe_activation_default(act), loc);
}
