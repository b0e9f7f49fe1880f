"""Entry script of the frozen desktop agent: ``agent_kit.face.cli:main``, as the console script.

``agent-kit --agent-kit-trace-hops HOST PORT BUDGET`` is the monitor's traceroute child
(``agent_kit.loop.traceroute_child``): the frozen binary has no ``python -c`` to start it with.
``agent-kit --agent-kit-measure-echo LEVEL_DBFS SECONDS`` is its echo test's child
(``agent_kit.loop.echo_child``).
"""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["--agent-kit-trace-hops"]:
        from agent_kit.loop.traceroute_child import child_main

        child_main(sys.argv[2:5])
    elif sys.argv[1:2] == ["--agent-kit-measure-echo"]:
        from agent_kit.loop.echo_child import child_main as echo_child_main

        echo_child_main(sys.argv[2:4])
    else:
        from agent_kit.face.cli import main

        main()
