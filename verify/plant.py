"""Networks with a planted counterexample (for the SoundnessBench-style self-check).

``plant(net, point, eps, target, centre, delta, height)`` returns a network that equals
``net`` everywhere except in the tiny L1-ball of radius ``delta`` around ``centre``, where a
ReLU "hat" adds up to ``height`` to output ``target``:

    bump(x) = relu(1 - sum_i (relu(x_i - c_i) + relu(c_i - x_i)) / delta)   in [0, 1]

It is built as one feed-forward ReLU network: the hat's two hidden layers run beside the
first two hidden layers of ``net`` (block-diagonal weights), its non-negative value is
carried through the later ReLUs unchanged, and the output layer adds ``height * bump`` to
the target row. ``height = 0`` gives the *twin*: the same architecture without a planted
counterexample. ``net`` needs at least two hidden layers.
"""

from __future__ import annotations

import numpy as np

from .network import Network


def plant(net, centre, delta, target, height):
    L = net.layers
    if len(L) < 3:
        raise ValueError("plant needs a network with at least two hidden layers")
    n = net.n_inputs
    c = np.asarray(centre, np.float64)
    layers = []
    # hidden layer 1: [W1 x + b1 ; x - c ; c - x]
    W1, b1 = L[0]
    W = np.vstack([W1, np.eye(n), -np.eye(n)])
    b = np.concatenate([b1, -c, c])
    layers.append((W, b))
    # hidden layer 2: [W2 h + b2 ; 1 - sum(parts) / delta]
    W2, b2 = L[1]
    h1 = W1.shape[0]
    W = np.zeros((W2.shape[0] + 1, h1 + 2 * n))
    W[: W2.shape[0], :h1] = W2
    W[-1, h1:] = -1.0 / delta
    layers.append((W, np.concatenate([b2, [1.0]])))
    # later hidden layers: carry the bump (>= 0) through the ReLUs
    for Wk, bk in L[2:-1]:
        W = np.zeros((Wk.shape[0] + 1, Wk.shape[1] + 1))
        W[:-1, :-1] = Wk
        W[-1, -1] = 1.0
        layers.append((W, np.concatenate([bk, [0.0]])))
    Wo, bo = L[-1]
    W = np.zeros((Wo.shape[0], Wo.shape[1] + 1))
    W[:, :-1] = Wo
    W[target, -1] = height
    layers.append((W, bo.copy()))
    return Network(layers, name=f"{net.name}+plant(h={height:g})")
