"""The shared contract: the checks catalogue, results, policy, level judging, languages.

Imports no other layer of agent_kit (and nothing of probes).
"""
