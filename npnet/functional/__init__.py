"""The pure math of npnet, one function per formula, under the names the tutorial series
uses: `from npnet.functional import sigmoid, cross_entropy, gradient_descent`.

The layers and losses call these same functions, and so do the trainer's L2 term and the
optimizers' weight decay (`l2_penalty_gradient`), so what a chapter shows is exactly what
the trainer runs. The optimizers' update rules themselves live beside their state in
`npnet.optim.optimizers`; `npnet.functional.reference` holds the plain-loop twins of the fast
paths (convolution, im2col/col2im, pooling, the Adam step) that the tests compare them with.
By chapter:

    1.1 arrays                normalize
    1.2 matrix operations     matrix_multiply, linear (Z = X W + b), linear_backward
    1.3 activations           sigmoid, tanh, relu, leaky_relu, elu, gelu, softmax and derivatives
    2.1 losses                mse_loss, binary_cross_entropy, cross_entropy (+ mae, huber, hinge)
    2.2/2.3 gradient descent  gradient_descent (full batch or mini-batch)
    2.4 numerical gradients   numerical_gradient, relative_error
    4.2/4.3 CNNs              conv2d, conv2d_backward, im2col, col2im, max_pool2d, avg_pool2d
    4.4 regularization        l2_penalty, l2_penalty_gradient, dropout
    4.5 batch normalization   batch_norm_forward, batch_norm_inference, batch_norm_backward
"""

from npnet.functional.activations import (
    elu,
    elu_derivative,
    gelu,
    gelu_derivative,
    identity,
    leaky_relu,
    leaky_relu_derivative,
    log_softmax,
    relu,
    relu_derivative,
    sigmoid,
    sigmoid_derivative,
    sigmoid_derivative_from_output,
    softmax,
    softmax_backward,
    tanh,
    tanh_derivative,
    tanh_derivative_from_output,
)
from npnet.functional.conv import conv2d, conv2d_backward, conv2d_forward
from npnet.functional.conv_columns import col2im, im2col
from npnet.functional.linear import linear, linear_backward, matrix_multiply
from npnet.functional.losses import (
    binary_cross_entropy,
    binary_cross_entropy_gradient,
    cross_entropy,
    cross_entropy_gradient,
    hinge_loss,
    hinge_loss_gradient,
    huber_loss,
    huber_loss_gradient,
    mae_loss,
    mae_loss_gradient,
    mse_loss,
    mse_loss_gradient,
)
from npnet.functional.normalization import (
    batch_norm_backward,
    batch_norm_forward,
    batch_norm_inference,
)
from npnet.functional.numerical import numerical_gradient, relative_error
from npnet.functional.optimization import gradient_descent
from npnet.functional.pooling import (
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
)
from npnet.functional.preprocessing import normalize
from npnet.functional.regularization import dropout, l2_penalty, l2_penalty_gradient

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm_backward",
    "batch_norm_forward",
    "batch_norm_inference",
    "binary_cross_entropy",
    "binary_cross_entropy_gradient",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "cross_entropy",
    "cross_entropy_gradient",
    "dropout",
    "elu",
    "elu_derivative",
    "gelu",
    "gelu_derivative",
    "gradient_descent",
    "hinge_loss",
    "hinge_loss_gradient",
    "huber_loss",
    "huber_loss_gradient",
    "identity",
    "im2col",
    "l2_penalty",
    "l2_penalty_gradient",
    "leaky_relu",
    "leaky_relu_derivative",
    "linear",
    "linear_backward",
    "log_softmax",
    "mae_loss",
    "mae_loss_gradient",
    "matrix_multiply",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "mse_loss",
    "mse_loss_gradient",
    "normalize",
    "numerical_gradient",
    "relative_error",
    "relu",
    "relu_derivative",
    "sigmoid",
    "sigmoid_derivative",
    "sigmoid_derivative_from_output",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_derivative",
    "tanh_derivative_from_output",
]
