"""The one constant every Mila kernel shares, on every device (torch-free)."""

#: Where x + β is clamped before exp: tanh(softplus(20)) = 1 to double precision, and e² stays
#: finite in float32.
CLAMP = 20.0
