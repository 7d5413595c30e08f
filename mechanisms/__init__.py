"""Privacy mechanisms, their TFF aggregation factories, and their accountants.

Import from the submodules (`mechanisms.gaussian`, `mechanisms.factory`, `mechanisms.accounting`):
this package never imports `tff_pipelines`, and `mechanisms.accounting` never imports TensorFlow,
so the privacy calculator answers without loading TF.
"""
