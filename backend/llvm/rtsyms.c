/* The run-time functions generated code calls, by name and address. The
 * JIT defines exactly these in every module's JITDylib (absolute symbols),
 * so a program linked against the static or shared libmodelc needs no
 * -rdynamic or --whole-archive; an ahead-of-time object gets them from
 * libmodelc-rt at link time. cg_call refuses an rt_ name missing here. */
#include "compile.h"

#include <string.h>

#define SYM(f) {#f, (uintptr_t)(f)}

static const JitRtSym syms[] = {
    SYM(rt_gemm_f32),
    SYM(rt_gemm_f64),
    SYM(rt_conv2d_f32),
    SYM(rt_conv2d_f64),
    SYM(rt_conv2d_grad_input_f32),
    SYM(rt_conv2d_grad_input_f64),
    SYM(rt_conv2d_grad_kernel_f32),
    SYM(rt_conv2d_grad_kernel_f64),
    SYM(rt_max_pool2d_f32),
    SYM(rt_max_pool2d_f64),
    SYM(rt_max_pool2d_grad_f32),
    SYM(rt_max_pool2d_grad_f64),
    SYM(rt_avg_pool2d_f32),
    SYM(rt_avg_pool2d_f64),
    SYM(rt_avg_pool2d_grad_f32),
    SYM(rt_avg_pool2d_grad_f64),
    SYM(rt_dropout_mask_f32),
    SYM(rt_dropout_mask_f64),
    SYM(rt_gather_f32),
    SYM(rt_gather_f64),
    SYM(rt_gather_grad_f32),
    SYM(rt_gather_grad_f64),
    SYM(rt_replica_mean_f32),
    SYM(rt_replica_mean_f64),
    SYM(rt_parallel_rows),
    SYM(rt_parallel_parts),
    SYM(rt_epilogue_begin),
    SYM(rt_epilogue_end),
    SYM(rt_prof_begin),
    SYM(rt_prof_tick),
    SYM(rt_step_done),
};

const JitRtSym *jit_rt_syms(int *n)
{
    *n = (int)(sizeof syms / sizeof syms[0]);
    return syms;
}

bool jit_rt_sym_known(const char *name)
{
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        if (strcmp(syms[i].name, name) == 0)
            return true;
    return false;
}
