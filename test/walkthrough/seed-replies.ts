// The replies printed in the release notes §9 (../shared/seeds/000_a429143a58badc53.txt), verbatim.
export const step1QueryNetworkServiceL3NetworkRef = {
  inventories: [
    {
      l3NetworkUuid: '1a82c2691978476fa6cefa36bb9d4bfd',
      networkServiceProviderUuid: '5d21ea0f39c04d6fb68cfaf5a37db4ad',
      networkServiceType: 'DNS',
    },
    {
      l3NetworkUuid: '1a82c2691978476fa6cefa36bb9d4bfd',
      networkServiceProviderUuid: '5d21ea0f39c04d6fb68cfaf5a37db4ad',
      networkServiceType: 'DHCP',
    },
  ],
  success: true,
} as const;

export const step2DetachNetworkServiceFromL3Network = {
  inventory: {
    createDate: 'Jan 30, 2016 3:01:03 PM',
    dns: ['8.8.8.8'],
    ipRanges: [
      {
        createDate: 'Jan 30, 2016 3:01:04 PM',
        endIp: '192.168.201.199',
        gateway: '192.168.200.1',
        l3NetworkUuid: '1a82c2691978476fa6cefa36bb9d4bfd',
        lastOpDate: 'Jan 30, 2016 3:01:04 PM',
        name: 'ipr-dk7p',
        netmask: '255.255.252.0',
        startIp: '192.168.201.180',
        uuid: 'ec5fd87dd80243fdabeeace847c04427',
      },
    ],
    l2NetworkUuid: '9ec8cad681d1424fa7eda2447edae142',
    lastOpDate: 'Jan 30, 2016 3:01:03 PM',
    name: 'l3-etpz',
    networkServices: [],
    state: 'Enabled',
    system: false,
    type: 'L3BasicNetwork',
    uuid: '1a82c2691978476fa6cefa36bb9d4bfd',
    zoneUuid: '4a3a78b1b9f049948b79cf9e667f0af2',
  },
  success: true,
} as const;

export const step3QueryNetworkServiceProvider = {
  inventories: [
    {
      attachedL2NetworkUuids: ['9ec8cad681d1424fa7eda2447edae142'],
      createDate: 'Jan 30, 2016 11:56:32 AM',
      description: 'Flat Network Service Provider',
      lastOpDate: 'Jan 30, 2016 11:56:32 AM',
      name: 'Flat Network Service Provider',
      networkServiceTypes: ['DHCP', 'Userdata'],
      type: 'Flat',
      uuid: '17864f985e584a9ba4cd81de215212ce',
    },
  ],
  success: true,
} as const;

export const step4QueryL3Network = {
  inventories: [
    {
      l2NetworkUuid: '9ec8cad681d1424fa7eda2447edae142',
    },
  ],
  success: true,
} as const;

export const step5AttachNetworkServiceProviderToL2Network = {
  inventory: {
    attachedL2NetworkUuids: ['9ec8cad681d1424fa7eda2447edae142'],
    createDate: 'Jan 30, 2016 11:56:32 AM',
    description: 'Flat Network Service Provider',
    lastOpDate: 'Jan 30, 2016 11:56:32 AM',
    name: 'Flat Network Service Provider',
    networkServiceTypes: ['DHCP', 'Userdata'],
    type: 'Flat',
    uuid: '17864f985e584a9ba4cd81de215212ce',
  },
  success: true,
} as const;

export const step6AttachNetworkServiceToL3Network = {
  inventory: {
    createDate: 'Jan 30, 2016 3:01:03 PM',
    dns: ['8.8.8.8'],
    ipRanges: [
      {
        createDate: 'Jan 30, 2016 3:01:04 PM',
        endIp: '192.168.201.199',
        gateway: '192.168.200.1',
        l3NetworkUuid: '1a82c2691978476fa6cefa36bb9d4bfd',
        lastOpDate: 'Jan 30, 2016 3:01:04 PM',
        name: 'ipr-dk7p',
        netmask: '255.255.252.0',
        startIp: '192.168.201.180',
        uuid: 'ec5fd87dd80243fdabeeace847c04427',
      },
    ],
    l2NetworkUuid: '9ec8cad681d1424fa7eda2447edae142',
    lastOpDate: 'Jan 30, 2016 3:01:03 PM',
    name: 'l3-etpz',
    networkServices: [
      {
        l3NetworkUuid: '1a82c2691978476fa6cefa36bb9d4bfd',
        networkServiceProviderUuid: '17864f985e584a9ba4cd81de215212ce',
        networkServiceType: 'DHCP',
      },
      {
        l3NetworkUuid: '1a82c2691978476fa6cefa36bb9d4bfd',
        networkServiceProviderUuid: '17864f985e584a9ba4cd81de215212ce',
        networkServiceType: 'Userdata',
      },
    ],
    state: 'Enabled',
    system: false,
    type: 'L3BasicNetwork',
    uuid: '1a82c2691978476fa6cefa36bb9d4bfd',
    zoneUuid: '4a3a78b1b9f049948b79cf9e667f0af2',
  },
  success: true,
} as const;

export const step7QueryVirtualRouterVm = {
  inventories: [
    {
      allVolumes: [
        {
          createDate: 'Jan 30, 2016 3:06:50 PM',
          description: 'Root volume for VM[uuid:c5a966cb87d644649952daf683f89e26]',
          deviceId: 0,
          format: 'qcow2',
          installPath:
            '/zstack_ps/rootVolumes/acct-36c27e8ff05c4780bf6d2fa65700f22e/vol-8eeaa9cb4c1045a2825f8815fed69d72/8eeaa9cb4c1045a2825f8815fed69d72.qcow2',
          lastOpDate: 'Jan 30, 2016 3:06:59 PM',
          name: 'ROOT-for-virtualRouter.l3.1a82c2691978476fa6cefa36bb9d4bfd',
          primaryStorageUuid: '4bff4e2d266f480ead596752d14ff3b5',
          rootImageUuid: '7bed05aa8ace4e5e8d6c55b284b66fb5',
          size: 467206656,
          state: 'Enabled',
          status: 'Ready',
          type: 'Root',
          uuid: '8eeaa9cb4c1045a2825f8815fed69d72',
          vmInstanceUuid: 'c5a966cb87d644649952daf683f89e26',
        },
      ],
      allocatorStrategy: 'LeastVmPreferredHostAllocatorStrategy',
      applianceVmType: 'VirtualRouter',
      clusterUuid: '10409d3e33b249c19746022930a541c7',
      cpuNum: 1,
      cpuSpeed: 2,
      createDate: 'Jan 30, 2016 3:06:50 PM',
      defaultRouteL3NetworkUuid: '1a82c2691978476fa6cefa36bb9d4bfd',
      hostUuid: '415fa093b34e4a3d873368104b127115',
      hypervisorType: 'KVM',
      imageUuid: '7bed05aa8ace4e5e8d6c55b284b66fb5',
      instanceOfferingUuid: '9cec7bd6324445a184351ffb7d32f970',
      lastHostUuid: '415fa093b34e4a3d873368104b127115',
      lastOpDate: 'Jan 30, 2016 3:07:20 PM',
      managementNetworkUuid: '1a82c2691978476fa6cefa36bb9d4bfd',
      memorySize: 536870912,
      name: 'virtualRouter.l3.1a82c2691978476fa6cefa36bb9d4bfd',
      platform: 'Linux',
      publicNetworkUuid: '1a82c2691978476fa6cefa36bb9d4bfd',
      rootVolumeUuid: '8eeaa9cb4c1045a2825f8815fed69d72',
      state: 'Running',
      status: 'Connected',
      type: 'ApplianceVm',
      uuid: 'c5a966cb87d644649952daf683f89e26',
      vmNics: [
        {
          createDate: 'Jan 30, 2016 3:06:50 PM',
          deviceId: 0,
          gateway: '192.168.200.1',
          ip: '192.168.201.195',
          l3NetworkUuid: '1a82c2691978476fa6cefa36bb9d4bfd',
          lastOpDate: 'Jan 30, 2016 3:06:50 PM',
          mac: 'fa:4c:01:68:77:00',
          metaData: '7',
          netmask: '255.255.252.0',
          uuid: 'c44e856aa88a42bc85ec30ce8c334c6c',
          vmInstanceUuid: 'c5a966cb87d644649952daf683f89e26',
        },
      ],
      zoneUuid: '4a3a78b1b9f049948b79cf9e667f0af2',
    },
  ],
  success: true,
} as const;

export const step7DestroyVmInstance = {
  success: true,
} as const;

export const step8QueryHost = {
  inventories: [
    {
      availableCpuCapacity: 7180,
      availableMemoryCapacity: 1997570048,
      clusterUuid: '4282fb61aa55458ea160de138e130298',
      createDate: 'Jan 30, 2016 2:51:13 PM',
      hypervisorType: 'KVM',
      lastOpDate: 'Jan 30, 2016 3:03:20 PM',
      managementIp: '192.168.200.187',
      name: 'host1',
      state: 'Enabled',
      status: 'Connected',
      totalCpuCapacity: 7182,
      totalMemoryCapacity: 2098233344,
      username: 'root',
      uuid: '402f8304a50c410486e023512492316b',
      zoneUuid: '4a3a78b1b9f049948b79cf9e667f0af2',
    },
    {
      availableCpuCapacity: 14363,
      availableMemoryCapacity: 8321593344,
      clusterUuid: '10409d3e33b249c19746022930a541c7',
      createDate: 'Jan 30, 2016 3:03:14 PM',
      hypervisorType: 'KVM',
      lastOpDate: 'Jan 30, 2016 3:03:52 PM',
      managementIp: '192.168.200.150',
      name: 'host2',
      state: 'Enabled',
      status: 'Connected',
      totalCpuCapacity: 14364,
      totalMemoryCapacity: 8371924992,
      username: 'root',
      uuid: '415fa093b34e4a3d873368104b127115',
      zoneUuid: '4a3a78b1b9f049948b79cf9e667f0af2',
    },
  ],
  success: true,
} as const;

export const step8ReconnectHost1 = {
  success: true,
} as const;

export const step8ReconnectHost2 = {
  success: true,
} as const;
