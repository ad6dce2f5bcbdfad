"""The full recipe of examples/bridge-lab: red and blue namespaces on the bridge v-net-0, which is their
gateway; forwarding on, masquerade for the lab network, and the host's port 80 forwarded to blue:80."""
import pulumi
import pulumi_netns as netns

cfg = pulumi.Config()
host = netns.Provider(
    "host",
    host=cfg.require("host"),
    private_key=cfg.require_secret("sshKey"),
    host_key=cfg.require("hostKey"),
)
on_host = pulumi.ResourceOptions(provider=host)
network = "192.168.15.0/24"
gateway = "192.168.15.5"
members = {"red": cfg.require("redAddress"), "blue": cfg.require("blueAddress")}

bridge = netns.Bridge("v-net-0", name="v-net-0", opts=on_host)
gateway_address = netns.Address("gateway", device=bridge.name, address=f"{gateway}/24", opts=on_host)

for color, address in members.items():
    ns = netns.Namespace(color, name=color, opts=on_host)
    cable = netns.Veth(
        color,
        name=f"veth-{color}",
        namespace=ns.name,
        peer=netns.VethPeerArgs(name=f"veth-{color}-br", master=bridge.name),
        opts=on_host,
    )
    ip = netns.Address(color, namespace=ns.name, device=cable.name, address=address, opts=on_host)
    # The gateway must be on a connected network first, hence depends_on.
    netns.Route(
        f"{color}-default",
        namespace=ns.name,
        destination="default",
        via=gateway,
        opts=pulumi.ResourceOptions(provider=host, depends_on=[ip, gateway_address]),
    )

netns.Sysctl("forwarding", key="net.ipv4.ip_forward", value="1", opts=on_host)
netns.Masquerade("lab", source=network, opts=on_host)
web = netns.PortForward(
    "web",
    protocol="tcp",
    port=80,
    to=f"{members['blue'].split('/')[0]}:80",
    # red reaching the host's port 80 gets to blue too, its answer coming back through the host.
    hairpin_network=network,
    opts=on_host,
)

pulumi.export("bridgeName", bridge.name)
pulumi.export("webForward", pulumi.Output.concat(web.protocol, " ", web.port.apply(str), " -> ", web.to))
