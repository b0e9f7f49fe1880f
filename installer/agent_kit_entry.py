"""Entry script of the frozen desktop agent: ``agent_kit.face.cli:main``, as the console script.

``agent-kit --agent-kit-trace-hops HOST PORT BUDGET`` is the monitor's traceroute child
(``agent_kit.loop.traceroute_child``): the frozen binary has no ``python -c`` to start it with.
"""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["--agent-kit-trace-hops"]:
        from agent_kit.loop.traceroute_child import child_main

        child_main(sys.argv[2:5])
    else:
        from agent_kit.face.cli import main

        main()
