"""Where models are kept: the ensemble, training and retraining, the model store and the registry with its ledger.

Imports the foundations, access and data; never serving, views, cli or the shells.
"""
