"""A JAX training step with xploss: ``jax.jit``, ``jax.grad`` and optax.

Run ``python examples/jax_train.py``. JAX code keeps the class axis last, so
the loss is called with ``axis=-1``; it compiles under ``jit`` like any JAX
function.
"""

import jax
import jax.numpy as jnp
import optax

import xploss

n, d, c = 512, 16, 3
k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
centers = 3 * jax.random.normal(k1, (c, d))
labels = jax.random.randint(k2, (n,), 0, c)
features = centers[labels] + jax.random.normal(k3, (n, d))
params = {"w": 0.01 * jax.random.normal(k4, (d, c)), "b": jnp.zeros(c)}


def loss_fn(params, features, labels):
    logits = features @ params["w"] + params["b"]
    return xploss.cross_entropy(logits, labels, axis=-1, label_smoothing=0.05)


opt = optax.adam(0.05)
opt_state = opt.init(params)


@jax.jit
def step(params, opt_state):
    loss, grads = jax.value_and_grad(loss_fn)(params, features, labels)
    updates, opt_state = opt.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss


losses = []
for _ in range(50):
    params, opt_state, loss = step(params, opt_state)
    losses.append(float(loss))
print(f"loss: {losses[0]:.4f} -> {losses[-1]:.4f}")
assert losses[-1] < 0.5 * losses[0]

# Masked classes (-inf logits) give finite gradients under jit.
grad = jax.jit(jax.grad(lambda x: xploss.cross_entropy(x, jnp.array([0]), axis=-1)))
g = grad(jnp.array([[2.0, -jnp.inf, 1.0]]))
assert bool(jnp.isfinite(g).all())
print("gradient with a masked class:", g)
