"""A PyTorch training step with xploss: autograd, an optimizer, ignored targets.

Run ``python examples/torch_train.py``. xploss takes torch tensors and returns
torch tensors on the same device; gradients flow through autograd.
"""

import torch

import xploss

torch.manual_seed(0)
device = "cuda" if torch.cuda.is_available() else "cpu"

# A linear classifier on synthetic data: 3 classes, 16 features.
n, d, c = 512, 16, 3
centers = 3 * torch.randn(c, d)
labels = torch.randint(0, c, (n,))
features = centers[labels] + torch.randn(n, d)
labels[::50] = -100  # some unlabelled examples: ignored by the loss

model = torch.nn.Linear(d, c).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
features, labels = features.to(device), labels.to(device)


def step():
    opt.zero_grad()
    loss = xploss.cross_entropy(model(features), labels, label_smoothing=0.05)
    loss.backward()
    opt.step()
    return loss.item()


losses = [step() for _ in range(50)]
print(f"loss: {losses[0]:.4f} -> {losses[-1]:.4f}")
assert losses[-1] < 0.5 * losses[0]

# Ignored targets contribute exactly 0 to every gradient, even when their
# logits are not finite.
logits = torch.randn(4, c, device=device, requires_grad=True)
target = torch.tensor([0, 1, -100, 2], device=device)
with torch.no_grad():
    logits[2] = float("nan")
xploss.cross_entropy(logits, target).backward()
assert torch.isfinite(logits.grad).all()
assert (logits.grad[2] == 0).all()
print("gradient of the ignored row:", logits.grad[2].tolist())
