/* Static warnings about how a model will train, found before training:
 * layers whose sigmoid/tanh start saturated, and gradients that an
 * initialisation shrinks by orders of magnitude on their way back to the
 * first layer. Also the layers of a graph as the warnings and the
 * statistics tools see them, and the moment analysis behind the
 * estimates. */
#ifndef MODELC_WARN_H
#define MODELC_WARN_H

#include "passes/passes.h"

/* ---- layers (layers.c) ----
 * A layer is a group of parameters named "<layer>.<what>" (a parameter
 * without a '.' is a layer of its own). On a specialized graph (no PHASE
 * nodes) each layer has:
 *   linear  the first op consuming the layer's kernel (matmul, conv2d) or,
 *           for a layer without one (batchnorm), the first consumer of its
 *           first parameter;
 *   pre     the end of the affine chain that follows `linear`: single-use
 *           adds/subs of the layer's own parameters or constants and
 *           multiplications/divisions by them (bias add, `/ 3`, gamma/beta);
 *   act     the activation (sigmoid, tanh, relu, elu, softmax) that is the
 *           only consumer of `pre`, or NULL. */
typedef enum { ACT_NONE, ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_ELU, ACT_SOFTMAX, ACT_COUNT } ActKind;

typedef struct PsLayer {
    const char *name;  /* arena-owned by the graph */
    Node **params;     /* the layer's PARAM nodes (weights and state, no slots), in order */
    int nparams;
    Node *kernel;      /* the param feeding `linear` as its weight, or NULL */
    Node *input;       /* the other operand of `linear` (the layer's input), or NULL */
    Node *linear, *pre, *act;
    ActKind act_kind;
    SrcLoc loc;        /* act's location when there is one, else linear's */
} PsLayer;

typedef struct PsLayers {
    PsLayer *v;
    int n;
} PsLayers;

/* Layers of g in the order their `linear` node appears; g must have no
 * PHASE nodes. Only nodes with id < nfwd are considered (the forward part;
 * pass g->nnodes when the graph has no gradient yet). */
void ps_find_layers(Graph *g, int nfwd, PsLayers *out);
void ps_layers_free(PsLayers *l);
const char *ps_act_name(ActKind k); /* the op's name, "linear" for ACT_NONE */
ActKind ps_act_kind(Op op);
bool ps_act_saturates(ActKind k);   /* the op has OPF_SATURATES (sigmoid, tanh) */

/* ---- moments (moments.c) ----
 * Per-element mean and second moment of every node at initialisation,
 * treating elements as independent (mean-field); `known` is false where an
 * op has no rule or an operand is unknown. */
typedef struct Moment {
    bool known;
    double mean, m2; /* E[x], E[x^2] */
} Moment;

/* Statistics of one model input; unknown inputs use the defaults below. */
typedef struct WarnInput {
    const char *name;
    double mean, var;
} WarnInput;

typedef struct WarnInputs {
    const WarnInput *v;
    int n;
    int batch; /* the training batch the estimates assume (0: 1) */
} WarnInputs;

/* Defaults for float inputs without statistics: images (rank >= 3, NHWC)
 * are taken as pixels uniform in [0, 1] (mean 1/2, variance 1/12), other
 * inputs as standardised features (mean 0, variance 1). */
Moment ps_input_moment(const Node *in, const WarnInputs *wi, bool *assumed);
/* Moments of a parameter's initializer (a checkpoint is not consulted). */
Moment ps_init_moment(const Node *param);
/* Forward moments of every node of g (indexed by id; g is renumbered). */
Moment *ps_moments(Graph *g, const WarnInputs *wi);
/* Backward: E[dL/dx^2] per element relative to E[dL/d(from)^2] = 1, for
 * every node before `from`; entries without a rule are 0 and `reached` is
 * false. Gradients of parameters are per example (summed over the spatial
 * positions of a convolution, not over N). */
double *ps_grad_moments(Graph *g, const Moment *fwd, const Node *from, int batch, bool *reached);
/* Gaussian expectations for z ~ N(mean, var): E[f(z)] and E[f(z)^2] for
 * an elementwise op, E[f'(z)^2], and the fraction of sigmoid/tanh outputs
 * within 1% of their bounds (sigmoid < 0.01 or > 0.99; |tanh| > 0.99). */
bool ps_gauss_unary(Op op, double alpha, double mean, double var, double *e1, double *e2);
double ps_gauss_deriv2(Op op, double alpha, double mean, double var);
double ps_gauss_saturated(ActKind k, double mean, double var);
double ps_gauss_positive(double mean, double var); /* P(z > 0) */

/* ---- the warnings (warn.c) ---- */
/* Carets to draw for a diagnostic at loc: the identifier starting there in
 * the source registered with d (at least 1). */
int ps_loc_span(Diags *d, SrcLoc loc);

/* Thresholds shared with the training-time checks. */
#define PS_SATURATED_FRAC 0.5  /* a layer is saturated above this fraction */
#define PS_VANISH_RATIO 1e-2   /* gradient norm ratio (std) vs the output layer */

/* Analyse g (any stage before autodiff; PHASE nodes resolve as in
 * training) and add warnings to d at each layer's source line, with notes
 * suggesting a fix. wi may be NULL. Returns true (warnings are not
 * errors); false only when g cannot be analysed (it has FUSED nodes). */
bool ps_warn(Graph *g, const WarnInputs *wi, Diags *d);

/* For `modelc check`: run ps_warn on a copy of g and print the new
 * diagnostics to f. Returns the number of warnings. */
int ps_warn_report(Graph *g, int batch, Diags *d, FILE *f);

/* For the C API: a model with batchnorm or dropout (PHASE nodes in the
 * source graph src) that is trained (`updating`) in inference mode, or
 * evaluated without an update in training mode, gets one warning at the
 * first such layer and a note per layer saying what differs. Returns true
 * when it warned. */
bool ps_warn_mode(const Graph *src, Mode mode, bool updating, Diags *d);

/* Layer questions by layer name (the prefix of "<layer>.<param>"): every
 * weight of the layer is frozen (and it has one); it is a batchnorm (it
 * has a moving_mean). */
bool ps_layer_frozen(const Graph *g, const char *layer);
bool ps_layer_is_batchnorm(const Graph *g, const char *layer);

#endif
