/* The IR verifier: a valid graph passes silently; each broken invariant
 * is reported with an exact message at the offending node. */
#include <stdlib.h>

#include "test_irtext.h"

typedef struct Base {
    Graph *g;
    Node *x, *w, *h, *b, *y, *loss, *gw;
} Base;

/* x:[N,3] @ w:[3,3] + b:[3] summed to a loss; a grad and an update of w. */
static Base base(void)
{
    Base B;
    Diags d;
    diags_init(&d);
    B.g = ir_graph_new("v");
    B.x = ir_input(B.g, "x", DT_F32, tx_shape(2, IR_DIM_N, 3, 0, 0), tx_loc(1, 1));
    B.w = ir_param(B.g, "w", DT_F32, ir_shape2(3, 3), (Init){INIT_GLOROT_UNIFORM, 0, 0}, true, ROLE_WEIGHT,
                   tx_loc(2, 1));
    B.h = ir_binary(B.g, OP_MATMUL, B.x, B.w, tx_loc(3, 5), &d);
    B.h->label = "h";
    B.b = ir_param(B.g, "b", DT_F32, ir_shape1(3), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, tx_loc(4, 1));
    B.y = ir_binary(B.g, OP_ADD, B.h, B.b, tx_loc(5, 7), &d);
    B.y->label = "y";
    Attrs a = ir_attrs();
    a.naxes = 2;
    a.axes[1] = 1;
    B.loss = ir_op(B.g, OP_REDUCE_SUM, &B.y, 1, &a, tx_loc(6, 1), &d);
    B.loss->label = "loss";
    B.gw = ir_unary(B.g, OP_NEG, B.w, tx_loc(7, 1), &d);
    B.gw->label = "gw";
    ck_assert_int_eq(d.nerrors, 0);
    ir_add_output(B.g, OUT_LOSS, "loss", B.loss, NULL, false);
    ir_add_output(B.g, OUT_GRAD, "grad.w", B.gw, B.w, false);
    ir_add_output(B.g, OUT_UPDATE, "w", B.gw, B.w, true);
    diags_free(&d);
    return B;
}

/* Verify g and compare the first diagnostic "line:col: message". */
static void expect_error(Graph *g, const char *want)
{
    Diags d;
    diags_init(&d);
    ck_assert(!ir_verify(g, &d));
    ck_assert_int_ge(d.nerrors, 1);
    char buf[512];
    snprintf(buf, sizeof buf, "%d:%d: %s", d.v[0].loc.line, d.v[0].loc.col, d.v[0].msg);
    ck_assert_str_eq(buf, want);
    diags_free(&d);
}

static void swap_nodes(Graph *g, int i, int j)
{
    Node *t = g->nodes[i];
    g->nodes[i] = g->nodes[j];
    g->nodes[j] = t;
    g->nodes[i]->id = i;
    g->nodes[j]->id = j;
}

START_TEST(valid_graph_passes)
{
    Base B = base();
    Diags d;
    diags_init(&d);
    ck_assert(ir_verify(B.g, &d));
    ck_assert_int_eq(d.n, 0);
    diags_free(&d);
    ir_graph_free(B.g);
}
END_TEST

START_TEST(operand_after_use)
{
    Base B = base();
    swap_nodes(B.g, 2, 4);
    expect_error(B.g, "5:7: verifier: %y (add): operand 0 (%h) is defined after its use");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(operand_is_itself)
{
    Base B = base();
    B.y->in[0] = B.y;
    expect_error(B.g, "5:7: verifier: %y (add): operand 0 (%y) is defined by its use");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(id_not_position)
{
    Base B = base();
    B.h->id = 7;
    expect_error(B.g, "3:5: verifier: %h (matmul): has id 7 at position 2");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(arity)
{
    Base B = base();
    B.y->nin = 1;
    expect_error(B.g, "5:7: verifier: %y (add): takes 2 operands, has 1");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(wrong_shape)
{
    Base B = base();
    B.y->shape.d[1] = 4;
    expect_error(B.g, "5:7: verifier: %y (add): has type f32[N,4] but its operands and attributes give f32[N,3]");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(wrong_dtype)
{
    Base B = base();
    B.y->dt = DT_F64;
    expect_error(B.g, "5:7: verifier: %y (add): has type f64[N,3] but its operands and attributes give f32[N,3]");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(inference_fails)
{
    Base B = base();
    B.h->a.ta = true;
    expect_error(B.g, "3:5: verifier: %h (matmul): shape inference fails: matmul of f32[N,3] and f32[3,3]: "
                      "inner dimensions N and 3 differ");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(foreign_operand)
{
    Base B = base();
    Base C = base();
    B.y->in[1] = C.b;
    expect_error(B.g, "5:7: verifier: %y (add): operand 1 is not a node of this graph");
    B.y->in[1] = NULL;
    expect_error(B.g, "5:7: verifier: %y (add): operand 1 is missing");
    ir_graph_free(B.g);
    ir_graph_free(C.g);
}
END_TEST

START_TEST(output_outside_graph)
{
    Base B = base();
    Base C = base();
    B.g->outs[0].val = C.loss;
    expect_error(B.g, "0:0: verifier: output loss \"loss\" refers to a node outside the graph");
    ir_graph_free(B.g);
    ir_graph_free(C.g);
}
END_TEST

START_TEST(grad_target_not_leaf)
{
    Base B = base();
    B.g->outs[1].target = B.h;
    expect_error(B.g, "7:1: verifier: %gw (neg): output grad \"grad.w\": target %h is matmul, not a param or input");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(grad_target_shape)
{
    Base B = base();
    B.g->outs[2].target = B.b;
    expect_error(B.g, "7:1: verifier: %gw (neg): output update \"w\" is f32[3,3] but its target %b is f32[3]");
    B.g->outs[2].target = NULL;
    expect_error(B.g, "7:1: verifier: %gw (neg): output update \"w\" has no target");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(duplicate_param_name)
{
    Base B = base();
    ir_param(B.g, "w", DT_F32, ir_shape1(3), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, tx_loc(8, 2));
    expect_error(B.g, "8:2: verifier: %w.1 (param): duplicate param name \"w\"");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(unnamed_input)
{
    Base B = base();
    B.x->a.name = NULL;
    expect_error(B.g, "1:1: verifier: %v (input): has no name");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(two_losses)
{
    Base B = base();
    ir_add_output(B.g, OUT_LOSS, "loss2", B.loss, NULL, false);
    expect_error(B.g, "6:1: verifier: %loss (reduce_sum): output loss \"loss2\": a graph has at most one loss output");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(loss_not_scalar)
{
    Base B = base();
    B.g->outs[0].val = B.y;
    expect_error(B.g, "5:7: verifier: %y (add): output loss \"loss\" must be a floating-point scalar, is f32[N,3]");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(body_on_plain_node)
{
    Base B = base();
    B.y->sub = ir_graph_new("stray");
    expect_error(B.g, "5:7: verifier: %y (add): has a body but is not a fused node or a loop");
    ir_graph_free(B.y->sub);
    B.y->sub = NULL;
    ir_graph_free(B.g);
}
END_TEST

static Node *fused_on(Base *B, Graph *body)
{
    Node *in[2] = {B->y, B->b};
    Node *f = tx_fused(B->g, in, 2, body, tx_loc(9, 3));
    f->label = "f";
    return f;
}

START_TEST(fused_valid)
{
    Base B = base();
    fused_on(&B, tx_body(tx_shape(2, IR_DIM_N, 3, 0, 0), ir_shape1(3)));
    Diags d;
    diags_init(&d);
    ck_assert(ir_verify(B.g, &d));
    diags_free(&d);
    ir_graph_free(B.g);
}
END_TEST

START_TEST(fused_not_elementwise)
{
    Base B = base();
    Graph *body = tx_body(tx_shape(2, IR_DIM_N, 3, 0, 0), ir_shape1(3));
    Diags d;
    diags_init(&d);
    Node *s = ir_unary(body, OP_SOFTMAX, body->nodes[0], tx_loc(9, 9), &d);
    ck_assert_ptr_nonnull(s);
    diags_free(&d);
    fused_on(&B, body);
    expect_error(B.g, "9:3: verifier: %f (fused): body contains softmax, which is not elementwise");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(fused_inputs_mismatch)
{
    Base B = base();
    Node *f = fused_on(&B, tx_body(tx_shape(2, IR_DIM_N, 3, 0, 0), ir_shape1(3)));
    f->nin = 1;
    expect_error(B.g, "9:3: verifier: %f (fused): body has 2 inputs for 1 operand");
    f->nin = 2;
    f->sub->nodes[1]->shape = tx_shape(2, IR_DIM_N, 3, 0, 0);
    f->sub->nodes[1]->a.shape = f->sub->nodes[1]->shape;
    expect_error(B.g, "9:3: verifier: %f (fused): body input 1 is f32[N,3] but operand 1 is f32[3]");
    ir_graph_free(B.g);
}
END_TEST

START_TEST(fused_body_invalid)
{
    Base B = base();
    Node *f = fused_on(&B, tx_body(tx_shape(2, IR_DIM_N, 3, 0, 0), ir_shape1(3)));
    f->sub->nodes[4]->shape.d[1] = 5;
    expect_error(B.g, "9:5: verifier: in the body of fused %f: %s (add): has type f32[N,5] but its operands and "
                      "attributes give f32[N,3]");
    f->sub->nodes[4]->shape.d[1] = 3;
    f->sub->nouts = 0;
    expect_error(B.g, "9:3: verifier: %f (fused): body has no output");
    ir_graph_free(B.g);
}
END_TEST

/* Every violation is reported, not just the first. */
START_TEST(reports_all)
{
    Base B = base();
    B.y->shape.d[1] = 4;
    B.g->outs[1].target = B.h;
    ir_param(B.g, "b", DT_F32, ir_shape1(3), (Init){INIT_ZEROS, 0, 0}, true, ROLE_WEIGHT, tx_loc(8, 2));
    Diags d;
    diags_init(&d);
    ck_assert(!ir_verify(B.g, &d));
    ck_assert_int_eq(d.nerrors, 3);
    ck_assert_str_eq(d.v[0].msg, "verifier: %y (add): has type f32[N,4] but its operands and attributes give f32[N,3]");
    ck_assert_str_eq(d.v[1].msg, "verifier: %b.1 (param): duplicate param name \"b\"");
    ck_assert_str_eq(d.v[2].msg, "verifier: %gw (neg): output grad \"grad.w\": target %h is matmul, not a param or input");
    diags_free(&d);
    ir_graph_free(B.g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("irtext_verify");
    TCase *t = tcase_create("verify");
    tcase_add_test(t, valid_graph_passes);
    tcase_add_test(t, operand_after_use);
    tcase_add_test(t, operand_is_itself);
    tcase_add_test(t, id_not_position);
    tcase_add_test(t, arity);
    tcase_add_test(t, wrong_shape);
    tcase_add_test(t, wrong_dtype);
    tcase_add_test(t, inference_fails);
    tcase_add_test(t, foreign_operand);
    tcase_add_test(t, output_outside_graph);
    tcase_add_test(t, grad_target_not_leaf);
    tcase_add_test(t, grad_target_shape);
    tcase_add_test(t, duplicate_param_name);
    tcase_add_test(t, unnamed_input);
    tcase_add_test(t, two_losses);
    tcase_add_test(t, loss_not_scalar);
    tcase_add_test(t, body_on_plain_node);
    tcase_add_test(t, fused_valid);
    tcase_add_test(t, fused_not_elementwise);
    tcase_add_test(t, fused_inputs_mismatch);
    tcase_add_test(t, fused_body_invalid);
    tcase_add_test(t, reports_all);
    suite_add_tcase(s, t);
    return tu_run(s);
}
